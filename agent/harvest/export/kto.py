"""``kto``: unpaired rows ``{"prompt": [...], "completion": [...], "label": bool}`` from ratings.

Every rated alternative of a reply group is a row: good → label true, bad → label false. The
completion is the reply as generated (a rating judges the original, not a later edit).
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.harvest.export.dpo import USABLE, candidates
from agent.harvest.export.examples import Conversation, Example, assistant, key_of, provenance

FILE_FORMAT = "json"


def examples(conv: Conversation) -> Iterator[Example]:
    """One row per rated reply."""
    for ex, prompt in conv.contexts():
        if ex.reason not in USABLE:
            continue
        by_id = {r.id: r for r in ex.replies}
        for turn_id, text in candidates(conv, ex).items():
            rating = conv.curation.ratings.get(turn_id)
            if rating is None:
                continue
            completion = [assistant(conv.scrub(text))]
            prov = provenance(ex, by_id[turn_id], rating_note=rating[1] or "")
            prov["rating"] = rating[0]
            row = {"prompt": prompt, "completion": completion, "label": rating[0] == "good",
                   "conversation_id": conv.id, "provenance": prov}
            yield Example(conv.id, row, key_of(prompt[-1:] + completion) + f"\n{rating[0]}", 1, [prov])
