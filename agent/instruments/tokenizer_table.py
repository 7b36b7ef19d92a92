"""The lab's report as text (aligned columns, one per model) and as JSON-able values."""

from __future__ import annotations

from typing import Any

from agent.instruments.tokenizer_lab import LabReport, LanguageRow, SplitWord

PIECES_SHOWN = 24  # pieces of one word drawn in the text table (all of them in JSON)


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def metric_rows(report: LabReport, row: LanguageRow) -> list[tuple[str, list[str]]]:
    """(metric, one cell per model) for one language: tokens per word, characters per token, tokens."""
    names = [m.name for m in report.models]
    return [
        ("tokens/word", [_number(row.tokens_per_word(n)) for n in names]),
        ("chars/token", [_number(row.chars_per_token(n)) for n in names]),
        ("tokens", [str(row.tokens.get(n, 0)) for n in names]),
    ]


def language_order(report: LabReport) -> list[str]:
    """Languages, most turns first."""
    return sorted(report.languages, key=lambda lang: (-report.languages[lang].turns, lang))


def pieces_text(pieces: list[str]) -> str:
    """Pieces joined as ``epistemic tokenize TEXT`` shows them (``|`` between them)."""
    shown = " | ".join(pieces[:PIECES_SHOWN])
    return shown + (f" | … (+{len(pieces) - PIECES_SHOWN})" if len(pieces) > PIECES_SHOWN else "")


def table_lines(report: LabReport) -> list[str]:
    """The report as aligned text: fertility per language with a column per model, then the worst-split words."""
    names = [m.name for m in report.models]
    width = [max(11, len(n)) for n in names]
    lines = [f"# log: {report.log}: {report.turns} of {report.turns_read} turns measured in {report.seconds:.1f}s"]
    for model in report.models:
        how = "cached word chunks" if model.method == "chunks" else "whole turns"
        lines.append(f"# {model.name} ({model.kind}): {how}, {model.deviation:.2%} from whole-turn counts on a sample")
    for name, why in report.skipped:
        lines.append(f"# skipped {name}: {why}")
    header = f"{'':<16}" + "  ".join(f"{n:>{w}}" for n, w in zip(names, width, strict=True))
    for lang in language_order(report):
        row = report.languages[lang]
        lines += ["", f"{lang}: {row.turns} turns, {row.words} words, {row.chars} characters", header]
        for metric, cells in metric_rows(report, row):
            lines.append(f"  {metric:<14}" + "  ".join(f"{c:>{w}}" for c, w in zip(cells, width, strict=True)))
    for lang in language_order(report):
        worst = report.worst.get(lang) or []
        if worst:
            lines += ["", f"{lang}: words split worst (seen at least {report.min_count} times)"]
            lines += _worst_lines(worst, names)
    return lines


def _worst_lines(worst: list[SplitWord], names: list[str]) -> list[str]:
    wide = max(len(n) for n in names)
    lines = []
    for word in worst:
        counts = ", ".join(f"{n} {word.tokens[n]}" for n in names)
        lines.append(f"  {word.word} (×{word.count}): {counts}")
        lines += [f"      {n:<{wide}}  {pieces_text(word.pieces[n])}" for n in names]
    return lines


def as_dict(report: LabReport) -> dict[str, Any]:
    """The report as JSON-able values (``epistemic tokenize --corpus --json``)."""
    names = [m.name for m in report.models]
    return {
        "log": report.log, "min_count": report.min_count, "turns_read": report.turns_read, "turns": report.turns, "seconds": round(report.seconds, 3),
        "models": [{"name": m.name, "kind": m.kind, "path": m.path, "method": m.method,
                    "deviation": round(m.deviation, 6), "seconds": round(m.seconds, 3)} for m in report.models],
        "skipped": [{"name": n, "reason": why} for n, why in report.skipped],
        "languages": {lang: {
            "turns": row.turns, "words": row.words, "chars": row.chars,
            "models": {n: {"tokens": row.tokens.get(n, 0), "tokens_per_word": row.tokens_per_word(n),
                           "chars_per_token": row.chars_per_token(n)} for n in names},
        } for lang, row in report.languages.items()},
        "worst": {lang: [{"word": w.word, "count": w.count,
                          "models": {n: {"tokens": w.tokens[n], "pieces": w.pieces[n]} for n in names}}
                         for w in words] for lang, words in report.worst.items()},
    }
