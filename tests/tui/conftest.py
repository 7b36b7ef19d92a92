"""Fixtures for the TUI tests: the real engine on the shared starter model, a fresh log per test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.widgets import Input

from agent.runtime import Runtime, build_runtime
from tui.app import EpistemicApp, make_app

SIZE = (100, 32)


@pytest.fixture
def runtime(make_config: Callable[..., Any], starter_model: Any) -> Iterator[Runtime]:
    """A runtime on the session's model with its own SQLite log in tmp (seeded sampling)."""
    rt = build_runtime(make_config("[sampler]\nseed = 7\n"), model=starter_model)
    rt.engine.set_sampler(max_tokens=24)  # short replies keep the suite fast
    yield rt
    rt.log.close()  # the shared model stays loaded


@pytest.fixture
def app(runtime: Runtime) -> EpistemicApp:
    return make_app(runtime.config, runtime=runtime)


@pytest.fixture
def notices(app: EpistemicApp, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every notification the app shows, as (severity, message)."""
    seen: list[tuple[str, str]] = []
    original = app.notify

    def record(message: str, *args: Any, **kwargs: Any) -> None:
        seen.append((kwargs.get("severity", "information"), str(message)))
        original(message, *args, **kwargs)

    monkeypatch.setattr(app, "notify", record)
    return seen


async def wait_until(pilot: Any, condition: Callable[[], bool], limit_s: float = 60.0) -> None:
    """Let the app run until ``condition()`` holds; fail after ``limit_s`` seconds."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {condition}")
        await pilot.pause(0.02)


async def wait_idle(pilot: Any, app: EpistemicApp, limit_s: float = 300.0) -> None:
    """Wait until the engine job is over and its last events are drawn."""
    await wait_until(pilot, lambda: not app.bridge.busy, limit_s)
    await asyncio.sleep(0)
    await pilot.pause()


async def send(pilot: Any, app: EpistemicApp, text: str, *, type_it: bool = False) -> None:
    """Put ``text`` in the prompt (typed key by key, or pasted) and press Enter."""
    prompt = app.conversation.query_one("#prompt", Input)
    prompt.focus()
    if type_it:
        await pilot.press(*text)
    else:
        prompt.value = text
    await pilot.press("enter")


def steady_cursors(app: EpistemicApp) -> None:
    """Stop every input's cursor blinking, so a snapshot does not depend on when it is taken."""
    from textual.widgets import Input

    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
