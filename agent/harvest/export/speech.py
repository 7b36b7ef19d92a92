"""``speech``: the user's recorded utterances (16 kHz mono WAV) with their (corrected)
transcripts, in the Hugging Face ``audiofolder`` layout: ``data/<split>/metadata.jsonl`` beside
the WAV files, for fine-tuning speech-to-text on the user's own voice."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.harvest.export.exchanges import Curation, conversation_reason
from agent.harvest.export.options import Filters
from agent.harvest.export.query import Turn, language
from agent.harvest.export.sinks import JsonlSink
from agent.private import private_dir, private_opener

RATE = 16_000


@dataclass(frozen=True)
class Utterance:
    """One recorded user turn ready to export."""

    turn: Turn
    audio: Path
    transcript: str
    corrected: bool
    language: str | None


@dataclass
class SpeechTotals:
    """Duration and languages of what was exported."""

    seconds: float = 0.0
    languages: Counter[str] = field(default_factory=Counter)


def resolve(audio_path: str, data_dir: Path | None) -> Path:
    """A stored audio path: absolute as it is, relative to the data dir otherwise."""
    path = Path(audio_path)
    return path if path.is_absolute() or data_dir is None else data_dir / path


def utterances(turns: list[Turn], cur: Curation, f: Filters, data_dir: Path | None,
               removed: Counter[str]) -> Iterator[Utterance]:
    """The conversation's recorded user turns that pass the filters."""
    if turns and conversation_reason(turns[0].conversation_id, cur, f):
        return
    for turn in turns:
        if turn.role != "user" or not turn.audio_path:
            continue
        reason = _reason(turn, cur, f)
        if reason:
            removed[reason] += 1
            continue
        audio = resolve(turn.audio_path, data_dir)
        if not audio.is_file():
            removed["audio file missing"] += 1
            continue
        text = cur.transcripts.get(turn.id, turn.text)
        yield Utterance(turn, audio, text, turn.id in cur.transcripts, language(turn))


def _reason(turn: Turn, cur: Curation, f: Filters) -> str | None:
    if turn.id in cur.excluded_turns:
        return "excluded by curation"
    if f.since is not None and turn.created_at < f.since or f.until is not None and turn.created_at >= f.until:
        return "filter: date"
    if f.sources and (turn.source or "typed") not in f.sources:
        return "filter: source"
    if f.languages and language(turn) not in f.languages:
        return "filter: language"
    return None


class SpeechSink:
    """WAV files and ``metadata.jsonl`` per split; every file 16 kHz mono 16-bit PCM."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta: dict[str, JsonlSink] = {}
        self.totals = SpeechTotals()

    def add(self, split: str, utt: Utterance, scrub: Callable[[str], str]) -> None:
        """Write one utterance's audio and its metadata line (OSError / RuntimeError if unreadable)."""
        folder = private_dir(self.root / "data" / split)
        name = f"{utt.turn.id}.wav"
        seconds = write_wav16(utt.audio, folder / name)
        row: dict[str, Any] = {
            "file_name": name, "transcription": scrub(utt.transcript), "language": utt.language or "",
            "duration_s": round(seconds, 3), "conversation_id": utt.turn.conversation_id,
            "turn_id": utt.turn.id, "source": utt.turn.source or "", "corrected": utt.corrected,
            "stt_json": utt.turn.stt or "{}",
        }
        sink = self.meta.setdefault(split, JsonlSink(self.root, f"data/{split}"))
        sink.write("metadata", row)
        self.totals.seconds += seconds
        self.totals.languages[utt.language or "unknown"] += 1

    def close(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for sink in self.meta.values():
            out.update({k: v for k, v in sink.close().items() if v})
        return out


def write_wav16(source: Path, target: Path) -> float:
    """Copy ``source`` to ``target`` as 16 kHz mono 16-bit WAV (converted if needed); its seconds."""
    import soundfile

    info = soundfile.info(str(source))
    if info.samplerate == RATE and info.channels == 1 and info.subtype == "PCM_16" and info.format == "WAV":
        with open(source, "rb") as src, open(target, "xb", opener=private_opener) as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return float(info.frames) / RATE
    from audio.pcm import resample, to_int16, to_mono

    pcm, rate = soundfile.read(str(source), dtype="float32", always_2d=True)
    mono = resample(to_mono(pcm), rate, RATE)
    with open(target, "xb", opener=private_opener) as out:
        soundfile.write(out, to_int16(mono), RATE, subtype="PCM_16", format="WAV")
    return len(mono) / RATE
