"""Time from end of speech to first audio, per stage, with the starter models on this machine.

A private PulseAudio daemon with two null sinks stands in for a headset: questions spoken by the
starter Piper voice are played into "vsink" (the loop listens on its monitor) and the agent
answers into "vout". Each turn's waterfall is read from the loop; the pipeline's own overhead is
first-audio time minus the compute of the stages on the critical path (final transcript, model up
to the end of the first sentence, synthesis of the first sentence). The VAD's end-of-speech
silence ([vad] end_silence_ms, or the turn-end model's shorter pause) comes before "end of speech"
and is reported apart; "last word" adds it (and the model's decision time) back: the user's wait.

Each end-of-turn variant runs with partial transcripts on and off, all on one loop, round-robin
per question (so a changing load on a shared machine hits every variant alike):
  silence        the 700 ms silence timer alone, no early start (the old behaviour, as baseline)
  silence+early  the silence timer ends the turn; the reply is prepared from the pause on
  both           Smart Turn decides at the first pause, the silence timer otherwise
  model          Smart Turn decides at every pause (up to [vad] turn_max_silence_ms)

    .venv/bin/python bench/bench_voice.py [--turns 5] [--partials both|on|off] [--modes silence,both] [--json]
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
FIELDS = ("end_silence_s", "turn_model_s", "partial_wait_s", "stt_compute_s", "transcript_s", "first_token_s",
          "llm_compute_s", "first_sentence_s", "tts_compute_s", "first_audio_s", "compute_s", "overhead_s",
          "early_saved_s", "early_generated_s", "last_word_s")
MODES = {  # variant -> ([vad] end_of_turn, early_start)
    "silence": ("silence", False),
    "silence+early": ("silence", True),
    "both": ("both", True),
    "model": ("model", True),
}
ISSUE_LAST_WORD_S = 2.8  # the issue's measurement before this change: 0.7 s silence + 2.11 s


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

    def wait(self, count: int, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.waterfalls) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(self.waterfalls) < count:
            raise SystemExit("bench: a turn did not finish in time")


def variant_setup(args, partials: bool, mode: str, data_dir: Path, detector):
    """The config of one variant, its VAD and its end-of-turn policy (one Smart Turn model for all)."""
    from agent.config_load import load_config
    from agent.voice.listener import TurnPolicy
    from agent.voice.setup import load_vad

    env = {**os.environ, "EPISTEMIC_PATHS__DATA_DIR": str(data_dir), "EPISTEMIC_SAMPLER__TEMPERATURE": "0",
           "EPISTEMIC_SAMPLER__MAX_TOKENS": "48", "EPISTEMIC_STT__LANGUAGE": "en",
           "EPISTEMIC_STT__PARTIALS": str(partials).lower(), "EPISTEMIC_VAD__END_OF_TURN": MODES[mode][0],
           "EPISTEMIC_VAD__EARLY_START": str(MODES[mode][1]).lower()}
    config = load_config(args.config, env=env)
    vad = config.settings.vad
    uses_model = vad.end_of_turn != "silence" or vad.early_start
    policy = TurnPolicy(vad.end_of_turn, vad.turn_threshold, vad.early_start, detector if uses_model else None)
    return config, load_vad(config), policy


def run_rounds(args, names: list[tuple[bool, str]], model, whisper, piper, files: list[Path], data_dir: Path) -> dict:
    """Every variant on one loop, round-robin per question, so a changing machine load hits them
    all alike; the first round warms caches and is not counted."""
    from agent.runtime import build_runtime
    from agent.voice.setup import build_voice_loop
    from audio.turn_end import SmartTurnDetector

    detector = SmartTurnDetector.load()
    setups = {name: variant_setup(args, *name, data_dir, detector) for name in names}
    config, vad, policy = setups[names[0]]
    runtime = build_runtime(config, model=model)
    waiter = Waiter()
    loop = build_voice_loop(runtime, stt=whisper, tts=piper, on_event=waiter, vad=vad, policy=policy)
    if not loop.start():
        raise SystemExit("bench: could not open the null-sink devices")
    rows: dict[tuple[bool, str], list[dict]] = {name: [] for name in names}
    try:
        time.sleep(3.0)  # PortAudio's pulse plugin starts pulling output ~2 s after opening
        for i in range(args.turns + 1):
            for name in names:
                config, vad, policy = setups[name]
                whisper.settings = config.settings.stt  # partials on or off from the next utterance
                loop.set_end_of_turn(vad, policy)
                runtime.engine.new_conversation()
                time.sleep(0.2)
                subprocess.run(["paplay", "--device=vsink", str(files[i % len(files)])], check=True)
                waiter.wait(len(waiter.waterfalls) + 1)
                time.sleep(0.8)
                if i:
                    rows[name].append(flat(waiter.waterfalls[-1].as_record()))
        return rows
    finally:
        loop.stop()
        if runtime.log is not None:
            runtime.log.close()


def flat(record: dict) -> dict:
    """A waterfall record with its turn-end decision lifted to the top level."""
    turn = record.pop("turn_end")
    return record | {"turn_decision": turn["decision"], "turn_probability": turn["probability"], "turn_model_s": turn["model_s"]}


def summarise(name: str, rows: list[dict]) -> dict:
    summary: dict = {}
    for key in FIELDS:
        values = [r[key] for r in rows if r[key] is not None]
        summary[key] = statistics.median(values) if values else None
    summary["early_used"] = sum(r["early_start"] == "used" for r in rows) / len(rows)
    summary["model_decided"] = sum(r["turn_decision"] == "model" for r in rows) / len(rows)
    summary["partial_abandoned"] = sum(bool(r["partial_abandoned"]) for r in rows) / len(rows)
    print(f"\n{name}: medians over {len(rows)} turns (ms after the end of speech; last_word_s: after the last word)")
    for key in FIELDS:
        value = summary[key]
        print(f"  {key:<20} {'-' if value is None else f'{value * 1000:8.1f}'}")
    print(f"  early start used {summary['early_used']:.0%}, ended by the model {summary['model_decided']:.0%}, "
          f"partial abandoned {summary['partial_abandoned']:.0%}")
    return summary


def table(results: dict) -> None:
    """One line per variant, and the gain over the silence-timer baseline of the same run."""
    def ms(value) -> str:
        return "       -" if value is None else f"{value * 1000:8.0f}"

    print("\nvariant                    last word→audio  end silence  end of speech→audio  partial wait"
          "      stt      llm      tts  early used  vs baseline")
    for name, result in results.items():
        s = result["summary"]
        base = results.get(name.split(" / ")[0] + " / silence", {}).get("summary", {}).get("last_word_s")
        gain = "" if base is None or s["last_word_s"] is None else f"{(base - s['last_word_s']) * 1000:+.0f} ms"
        print(f"{name:<26} {ms(s['last_word_s'])}        {ms(s['end_silence_s'])}     {ms(s['first_audio_s'])}"
              f"             {ms(s['partial_wait_s'])}  {ms(s['stt_compute_s'])} {ms(s['llm_compute_s'])} "
              f"{ms(s['tts_compute_s'])}  {s['early_used']:>9.0%}  {gain}")
    print(f"(the issue measured {ISSUE_LAST_WORD_S:.1f} s from the last word before this change; target: 500 ms less)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--partials", choices=["both", "on", "off"], default="both")
    parser.add_argument("--modes", default=",".join(MODES), help=f"Comma-separated end-of-turn variants: {', '.join(MODES)}.")
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
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise SystemExit(f"bench: unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
        names = [(partials, mode) for partials in variants for mode in modes]
        load = os.getloadavg()[0]
        rows = run_rounds(args, names, model, whisper, piper, files, work / "data")
        results = {}
        for partials, mode in names:
            name = f"partials {'on' if partials else 'off'} / {mode}"
            results[name] = {"summary": summarise(name, rows[(partials, mode)]), "turns": rows[(partials, mode)]}
        table(results)
        print(f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after (on {os.cpu_count()} cores)")
        if args.json:
            print(json.dumps(results, indent=2))
        model.close()
    finally:
        stop_pulse(pulse_dir)


if __name__ == "__main__":
    main()
