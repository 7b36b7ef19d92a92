"""``dpo``: conversational preference rows ``{"prompt": [...], "chosen": [...], "rejected": [...]}``.

Pairs come from three kinds of curation of one reply group (same prompt): an edit (chosen = the
edit, rejected = the reply as generated), a preferred alternative (chosen = it, rejected = each
other alternative), and ratings (each good-rated alternative against each bad-rated one).
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.harvest.export.examples import Conversation, Example, assistant, key_of, provenance
from agent.harvest.export.exchanges import Exchange, reply_text
from agent.harvest.export.query import Turn

FILE_FORMAT = "json"
USABLE = (None, "interrupted reply", "rating below unrated", "rating below good")


def candidates(conv: Conversation, ex: Exchange) -> dict[int, str]:
    """Each alternative's text as exported (interrupted ones as the filter says; too short left out)."""
    f = conv.filters
    out = {}
    for reply in ex.replies:
        if reply.cut_off and f.interrupted == "drop" or reply.id in conv.curation.excluded_turns:
            continue
        text = reply_text(reply, f)
        if len(text.strip()) >= f.min_chars and (f.max_chars is None or len(text) <= f.max_chars):
            out[reply.id] = text
    return out


def pairs(conv: Conversation, ex: Exchange) -> Iterator[tuple[str, str, str, Turn, Turn]]:
    """(chosen text, rejected text, kind, chosen turn, rejected turn) for one exchange."""
    cur, texts = conv.curation, candidates(conv, ex)
    by_id = {r.id: r for r in ex.replies}
    for turn_id, text in texts.items():
        if turn_id in cur.edits:
            yield cur.edits[turn_id], text, "edit", by_id[turn_id], by_id[turn_id]
    preferred = cur.preferred.get(ex.active.group)
    if preferred in texts:
        best = cur.edits.get(preferred, texts[preferred])
        for turn_id, text in texts.items():
            if turn_id != preferred:
                yield best, text, "preferred", by_id[preferred], by_id[turn_id]
    rated = {tid: cur.ratings[tid][0] for tid in texts if tid in cur.ratings}
    for good in (t for t, r in rated.items() if r == "good"):
        for bad in (t for t, r in rated.items() if r == "bad"):
            yield texts[good], texts[bad], "rating", by_id[good], by_id[bad]


def examples(conv: Conversation) -> Iterator[Example]:
    """Every distinct preference pair of the conversation."""
    for ex, prompt in conv.contexts():
        if ex.reason not in USABLE:
            continue
        seen: set[tuple[str, str]] = set()
        for chosen, rejected, kind, won, lost in pairs(conv, ex):
            if chosen.strip() == rejected.strip() or (chosen, rejected) in seen:
                continue
            seen.add((chosen, rejected))
            chosen_msgs, rejected_msgs = [assistant(conv.scrub(chosen))], [assistant(conv.scrub(rejected))]
            prov = provenance(ex, won, pair=kind, rejected_turn_id=lost.id)
            row = {"prompt": prompt, "chosen": chosen_msgs, "rejected": rejected_msgs,
                   "conversation_id": conv.id, "provenance": prov}
            yield Example(conv.id, row, key_of(prompt[-1:] + chosen_msgs + rejected_msgs), 1, [prov])
