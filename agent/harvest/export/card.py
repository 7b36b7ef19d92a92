"""The dataset card ``README.md`` in the Hugging Face format: a YAML header (languages, license,
task categories, size category, configs/data_files) and what the export holds and left out."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.private import private_opener

TASKS = {
    "sft": ["text-generation"], "sharegpt": ["text-generation"], "parquet": ["text-generation"],
    "dpo": ["text-generation"], "kto": ["text-generation"], "speech": ["automatic-speech-recognition"],
}
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M"))


@dataclass
class CardFacts:
    """What the card reports, gathered while the export ran."""

    format: str
    rows: dict[str, int]  # file -> rows
    removed: Counter[str]
    pii: Counter[str]
    languages: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    personas: Counter[str] = field(default_factory=Counter)
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # speech: duration, ...


def size_category(n: int) -> str:
    """The Hugging Face size category of ``n`` rows."""
    return next((name for bound, name in SIZES if n < bound), "n>10M")


def _yaml_list(items: list[str]) -> str:
    return "\n".join(f"- {json.dumps(item, ensure_ascii=False)}" for item in items) or "[]"


def header(facts: CardFacts) -> str:
    """The YAML front matter."""
    languages = sorted(lang for lang in facts.languages if lang and lang != "unknown")
    splits: dict[str, str] = {}
    for path in sorted(facts.rows):
        split = path.split("/")[1].split(".")[0]
        splits[split] = f"data/{split}/**" if facts.format == "speech" else path
    files = "\n".join(f"  - split: {s}\n    path: {json.dumps(p)}" for s, p in splits.items())
    return (
        f"---\nlanguage:\n{_yaml_list(languages)}\nlicense: {facts.options.get('license', 'other')}\n"
        f"task_categories:\n{_yaml_list(TASKS[facts.format])}\n"
        f"size_categories:\n{_yaml_list([size_category(sum(facts.rows.values()))])}\n"
        f"tags:\n- epistemic-engine\n- {facts.format}\n"
        f"configs:\n- config_name: default\n  data_files:\n{files}\n---\n"
    )


def _table(counter: Counter[str], what: str) -> str:
    if not counter:
        return f"_no {what}_\n"
    return "\n".join(f"| {key or '(none)'} | {n} |" for key, n in counter.most_common()) + "\n"


def body(facts: CardFacts) -> str:
    """The card's text: rows, filters, models, personas, and what was removed and why."""
    rows = "\n".join(f"| `{path}` | {n} |" for path, n in sorted(facts.rows.items()))
    filters = json.dumps(facts.options, ensure_ascii=False, indent=2)
    extra = "".join(f"- {k}: {v}\n" for k, v in facts.extra.items())
    pii = "".join(f"- {kind}: {n} replaced\n" for kind, n in sorted(facts.pii.items())) or "- not scrubbed or none found\n"
    return (
        f"# Epistemic Engine dialogue dataset ({facts.format})\n\n"
        "Exported from the user's own dialogue log; every row carries its provenance (turn ids, "
        "model id and hash, persona, adapters, sampler), so any example leads back to its turn.\n\n"
        f"## Files\n\n| file | rows |\n|---|---|\n{rows}\n\n{extra}\n"
        f"## Models\n\n| model | examples |\n|---|---|\n{_table(facts.models, 'models')}\n"
        f"## Personas\n\n| persona | examples |\n|---|---|\n{_table(facts.personas, 'personas')}\n"
        f"## Languages\n\n| language | examples |\n|---|---|\n{_table(facts.languages, 'languages')}\n"
        f"## Removed, and why\n\n| reason | count |\n|---|---|\n{_table(facts.removed, 'removals')}\n"
        f"## PII scrubbing\n\n{pii}\n"
        f"## Export options and filters\n\n```json\n{filters}\n```\n"
    )


def write(root: Path, facts: CardFacts) -> None:
    """Write ``README.md`` (owner-only)."""
    with open(root / "README.md", "x", encoding="utf-8", opener=private_opener) as handle:
        handle.write(header(facts) + "\n" + body(facts))
