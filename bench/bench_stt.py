"""Speech-to-text real-time factor of our path against raw faster-whisper, same clips, same run.

Both sides use the same loaded WhisperModel and the same transcribe options (ours from
``WhisperStt.options()``); clips are Piper's English voice and, where Festival is installed,
Russian test speech. The sides alternate per clip and repetition, so drift in machine load hits
both. RTF = compute seconds / audio seconds (lower is faster); the ratio is raw RTF / our RTF
(1.0 = no overhead).

    .venv/bin/python bench/bench_stt.py [--reps 3] [--model PATH_OR_NAME] [--threads N]

Target: ratio >= 0.95.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio.pcm import STT_RATE, resample  # noqa: E402
from audio.settings import SttSettings  # noqa: E402
from audio.stt import WhisperStt, load_audio_file  # noqa: E402
from audio.tts import PiperTts  # noqa: E402

ENGLISH = [
    "The weather is lovely today, so we will walk to the park after lunch.",
    "Please remind me to call my sister at seven tonight, and buy some bread on the way home.",
    "Could you explain how a transformer model predicts the next word in a sentence?",
]
RUSSIAN = [
    "Привет, сегодня хорошая погода, и мы пойдём гулять в парк.",
    "Напомни мне, пожалуйста, позвонить сестре вечером.",
]


def english_clips() -> list[tuple[str, object, str]]:
    tts = PiperTts.load()
    return [("en", resample(tts.synthesize_all(text)[0], tts.sample_rate, STT_RATE), text) for text in ENGLISH]


def russian_clips(folder: Path) -> list[tuple[str, object, str]]:
    if shutil.which("text2wave") is None:
        print("# Festival not installed: English clips only", file=sys.stderr)
        return []
    clips = []
    for i, text in enumerate(RUSSIAN):
        src, wav = folder / f"ru{i}.txt", folder / f"ru{i}.wav"
        src.write_text(text, encoding="utf-8")
        subprocess.run(["text2wave", "-o", str(wav), "-eval", "(voice_msu_ru_nsh_clunits)", str(src)], check=True, capture_output=True)
        clips.append(("ru", load_audio_file(wav), text))
    return clips


def run_ours(stt: WhisperStt, pcm, language: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = stt.transcribe(pcm, language=language)
    return time.perf_counter() - started, result.text


def run_raw(stt: WhisperStt, pcm, language: str) -> tuple[float, str]:
    started = time.perf_counter()
    segments, _info = stt.model.transcribe(pcm, **stt.options(language=language))
    text = "".join(s.text for s in segments).strip()
    return time.perf_counter() - started, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--model", default="")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    stt = WhisperStt.load(SttSettings(model=args.model, threads=args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        clips = english_clips() + russian_clips(Path(tmp))
    for lang, pcm, _ in clips[:1]:  # warm-up (first call allocates)
        run_ours(stt, pcm, lang)
        run_raw(stt, pcm, lang)
    audio_s = ours_s = raw_s = 0.0
    print(f"{'clip':<5} {'audio s':>7} {'ours RTF':>9} {'raw RTF':>8}  transcript (ours)")
    for i, (lang, pcm, _text) in enumerate(clips):
        dur = len(pcm) / STT_RATE
        o = r = 0.0
        for rep in range(args.reps):
            sides = (run_ours, run_raw) if (i + rep) % 2 == 0 else (run_raw, run_ours)
            for side in sides:
                seconds, text = side(stt, pcm, lang)
                if side is run_ours:
                    o, ours_text = o + seconds, text
                else:
                    r += seconds
        audio_s += dur * args.reps
        ours_s += o
        raw_s += r
        print(f"{lang}{i:<3} {dur:>7.2f} {o / (dur * args.reps):>9.3f} {r / (dur * args.reps):>8.3f}  {ours_text[:60]}")
    ours_rtf, raw_rtf = ours_s / audio_s, raw_s / audio_s
    print(f"\nmodel {stt.model_name}, {len(clips)} clips x {args.reps} reps, {audio_s:.1f} s of audio per side")
    print(f"RTF ours {ours_rtf:.3f}  raw faster-whisper {raw_rtf:.3f}  ratio raw/ours {raw_rtf / ours_rtf:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
