"""Time from end of speech to first audio, per stage, with the starter models on this machine.

A private PulseAudio daemon with two null sinks stands in for a headset: questions spoken by the
starter Piper voice are played into "vsink" (the loop listens on its monitor) and the agent
answers into "vout". Each turn's waterfall is read from the loop; the pipeline's own overhead is
first-audio time minus the compute of the stages on the critical path (final transcript, model up
to the end of the first sentence, synthesis of the first sentence). The VAD's end-of-speech
silence ([vad] end_silence_ms) comes before "end of speech" and is reported apart.

    .venv/bin/python bench/bench_voice.py [--turns 5] [--partials both|on|off] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "What is the capital of France?",
    "Name a large animal that lives in the sea.",
    "What color is the sky on a clear day?",
    "How many legs does a spider have?",
    "What do bees make?",
    "Which planet is closest to the sun?",
    "What is the opposite of cold?",
    "Where do penguins live?",
]
FIELDS = ("partial_wait_s", "stt_compute_s", "transcript_s", "first_token_s", "llm_compute_s",
          "first_sentence_s", "tts_compute_s", "first_audio_s", "compute_s", "overhead_s")


def start_pulse(runtime_dir: str) -> None:
    env = {**os.environ, "EPISTEMIC_PULSE_DIR": runtime_dir}
    subprocess.run([str(ROOT / "scripts" / "pulse-null-sink.sh"), "start"], env=env, check=True, capture_output=True)
    os.environ["XDG_RUNTIME_DIR"] = runtime_dir
    sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True, check=True).stdout
    if "vout" not in sinks:
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=vout", "rate=22050", "channels=1"],
                       check=True, capture_output=True)
    os.environ["PULSE_SINK"] = "vout"


def stop_pulse(runtime_dir: str) -> None:
    env = {**os.environ, "EPISTEMIC_PULSE_DIR": runtime_dir}
    subprocess.run([str(ROOT / "scripts" / "pulse-null-sink.sh"), "stop"], env=env, capture_output=True)


def speak_files(piper, folder: Path) -> list[Path]:
    import numpy as np

    from audio.pcm import write_wav

    paths = []
    for i, text in enumerate(QUESTIONS):
        pcm, _ = piper.synthesize_all(text)
        pad = np.zeros(int(0.3 * piper.sample_rate), dtype=np.float32)
        paths.append(write_wav(folder / f"q{i}.wav", np.concatenate([pad, pcm, pad]), piper.sample_rate))
    return paths


class Waiter:
    """Collects WaterfallReady events."""

    def __init__(self) -> None:
        self.waterfalls: list = []

    def __call__(self, event) -> None:
        from agent.voice.events import WaterfallReady

        if isinstance(event, WaterfallReady):
            self.waterfalls.append(event.waterfall)

    def wait(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.waterfalls) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(self.waterfalls) < count:
            raise SystemExit("bench: a turn did not finish in time")


def run_variant(args, partials: bool, model, whisper, piper, files: list[Path], data_dir: Path) -> list[dict]:
    from agent.config_load import load_config
    from agent.runtime import build_runtime
    from agent.voice.setup import build_voice_loop

    env = {**os.environ, "EPISTEMIC_PATHS__DATA_DIR": str(data_dir), "EPISTEMIC_SAMPLER__TEMPERATURE": "0",
           "EPISTEMIC_SAMPLER__MAX_TOKENS": "48", "EPISTEMIC_STT__LANGUAGE": "en",
           "EPISTEMIC_STT__PARTIALS": str(partials).lower()}
    config = load_config(args.config, env=env)
    runtime = build_runtime(config, model=model)
    whisper.settings = config.settings.stt
    waiter = Waiter()
    loop = build_voice_loop(runtime, stt=whisper, tts=piper, on_event=waiter)
    if not loop.start():
        raise SystemExit("bench: could not open the null-sink devices")
    try:
        time.sleep(3.0)  # PortAudio's pulse plugin starts pulling output ~2 s after opening
        rows = []
        for i in range(args.turns + 1):  # the first turn warms caches and is not counted
            runtime.engine.new_conversation()
            subprocess.run(["paplay", "--device=vsink", str(files[i % len(files)])], check=True)
            waiter.wait(i + 1)
            time.sleep(0.8)
            if i:
                rows.append(waiter.waterfalls[i].as_record())
        return rows
    finally:
        loop.stop()
        if runtime.log is not None:
            runtime.log.close()


def summarise(name: str, rows: list[dict]) -> dict:
    summary = {}
    for key in FIELDS:
        values = [r[key] for r in rows if r[key] is not None]
        summary[key] = statistics.median(values) if values else None
    summary["end_silence_s"] = rows[0]["end_silence_s"]
    summary["overhead_without_partial_wait_s"] = (summary["overhead_s"] or 0) - (summary["partial_wait_s"] or 0)
    print(f"\n{name}: medians over {len(rows)} turns (ms after the end of speech)")
    for key, value in summary.items():
        print(f"  {key:<34} {'-' if value is None else f'{value * 1000:8.1f}'}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--partials", choices=["both", "on", "off"], default="both")
    parser.add_argument("--config", default=None)
    parser.add_argument("--json", action="store_true", help="Print the per-turn rows as JSON too.")
    args = parser.parse_args()

    from agent.config_load import load_config
    from agent.llm import load_backend
    from audio.stt import WhisperStt
    from audio.tts import PiperTts

    pulse_dir = tempfile.mkdtemp(prefix="bench-voice-pulse-")
    start_pulse(pulse_dir)
    work = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    try:
        base = load_config(args.config, env={})
        model = load_backend(base)
        whisper = WhisperStt.load(base.settings.stt)
        piper = PiperTts.load(base.settings.tts)
        files = speak_files(piper, work)
        print(f"cores {os.cpu_count()}, model {model.info.model_id} via {model.info.backend}, whisper {whisper.model_name}")
        variants = {"on": [True], "off": [False], "both": [True, False]}[args.partials]
        results = {}
        for partials in variants:
            name = f"partials {'on' if partials else 'off'}"
            rows = run_variant(args, partials, model, whisper, piper, files, work / name.replace(" ", "-"))
            results[name] = {"summary": summarise(name, rows), "turns": rows}
        if args.json:
            print(json.dumps(results, indent=2))
        model.close()
    finally:
        stop_pulse(pulse_dir)


if __name__ == "__main__":
    main()
