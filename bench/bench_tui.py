"""Tokens/s of a reply rendered in the TUI against the same reply generated headless, same run.

One loaded model, one engine, the same prompt in a fresh conversation each time, a fixed seed
(so both sides generate the same tokens; the token ids are compared) and end tokens biased away
(so every reply runs to --tokens). The sides alternate, so drift in machine load hits both.
Tokens/s is the engine's own figure for the reply (tokens over the generation loop, callbacks
included): the TUI side pays for its event sink and shares the CPU with the drawing.

    .venv/bin/python bench/bench_tui.py [--tokens 256] [--reps 3] [--threads N] [--config PATH]

Target: TUI / headless >= 0.9 (drawing must not slow thinking).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config_load import load_config  # noqa: E402
from agent.events import TurnFinished  # noqa: E402
from agent.runtime import Runtime, build_runtime  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
TARGET = 0.9


def _runtime(args: argparse.Namespace, folder: Path) -> Runtime:
    """The configured model with a throwaway log (the bench must not write the user's log)."""
    base = load_config(args.config) if args.config else load_config(None)
    model_line = f'model = "{base.settings.llm.model}"\n' if base.settings.llm.model else ""
    path = folder / "bench.toml"
    path.write_text(
        f'[llm]\nbackend = "{base.settings.llm.backend}"\n{model_line}threads = {args.threads}\n'
        f'[paths]\ndata_dir = "{folder}"\n[log]\npath = "{folder / "bench.sqlite3"}"\n',
        encoding="utf-8",
    )
    runtime = build_runtime(load_config(path, env={}))
    model = runtime.model
    end_ids = [i for i in range(getattr(model, "n_vocab", 0)) if model.is_end_token(i)]  # type: ignore[attr-defined]
    runtime.engine.set_sampler(seed=42, max_tokens=args.tokens, token_bias={i: -100.0 for i in end_ids})
    return runtime


def run_headless(runtime: Runtime) -> TurnFinished:
    runtime.engine.new_conversation()
    finished = runtime.engine.respond(PROMPT, on_event=lambda _event: None)
    assert finished is not None
    return finished


async def _run_tui(runtime: Runtime) -> TurnFinished:
    from textual.widgets import Input

    from tui.app import make_app

    runtime.engine.new_conversation()
    app = make_app(runtime.config, runtime=runtime)
    async with app.run_test(size=(100, 32)) as pilot:
        app.conversation.query_one("#prompt", Input).value = PROMPT
        await pilot.press("enter")
        # Poll with a plain sleep, not pilot.pause(): that makes every widget answer a message,
        # work a real session never does.
        while app.bridge.busy or app.last_finished is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return app.last_finished


def run_tui(runtime: Runtime) -> TurnFinished:
    return asyncio.run(_run_tui(runtime))


def _rate(finished: TurnFinished) -> float:
    return finished.result.timings.tokens_per_second or 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="tokens per reply")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per side")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores); 1 is steadier on a busy machine")
    parser.add_argument("--config", help="config file naming the model (default: the starter model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runtime = _runtime(args, Path(tmp))
        print(f"model {runtime.model.info.model_id} ({runtime.model.info.backend}) loaded in {time.perf_counter() - started:.1f}s")
        try:
            run_headless(runtime)  # warm-up
            headless: list[float] = []
            tui: list[float] = []
            for rep in range(args.reps):
                h, u = run_headless(runtime), run_tui(runtime)
                same = [s.token_id for s in h.result.steps] == [s.token_id for s in u.result.steps]
                headless.append(_rate(h))
                tui.append(_rate(u))
                print(f"rep {rep + 1}: headless {headless[-1]:7.1f} tok/s  tui {tui[-1]:7.1f} tok/s  "
                      f"tokens {len(h.result.steps)}/{len(u.result.steps)}  same tokens: {same}")
        finally:
            runtime.close()
    mh, mu = statistics.median(headless), statistics.median(tui)
    ratio = mu / mh if mh else 0.0
    print(f"median: headless {mh:.1f} tok/s, tui {mu:.1f} tok/s, ratio {ratio:.3f} (target >= {TARGET})")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
