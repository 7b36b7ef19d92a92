"""Adaptive sampling switched on and tuned live in the F3 sampler panel, on the real engine and model."""

from __future__ import annotations

from textual.widgets import Input

from tests.tui.conftest import SIZE, send, wait_idle
from tui.widgets.sampler_panel import SamplerPanel, field_order


async def _enter(pilot, panel: SamplerPanel, name: str, value: str) -> None:
    field = panel.query_one(f"#sampler-{name} Input", Input)
    field.focus()
    field.value = value
    await pilot.press("enter")


async def test_adaptive_mode_and_thresholds_are_set_in_the_panel_and_each_token_logs_its_action(app, runtime, notices):
    order = field_order()
    assert order.index("mode") < order.index("presence_penalty")  # the adaptive rows come right after the common ones
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        panel = app.conversation.query_one(SamplerPanel)
        await _enter(pilot, panel, "mode", "adaptive")
        await _enter(pilot, panel, "varentropy_high", "0.5")  # below varentropy_low: refused
        assert notices[-1][0] == "error" and "varentropy_high" in notices[-1][1]
        await _enter(pilot, panel, "entropy_high", "2.0")
        assert (runtime.engine.sampler.mode, runtime.engine.sampler.entropy_high) == ("adaptive", 2.0)
        assert runtime.engine.sampler.varentropy_high == 6.0
        assert panel.query_one("#sampler-mode").has_class("-changed")
        await pilot.press("f3")
        runtime.engine.set_sampler(max_tokens=16)
        await send(pilot, app, "Name a colour.")
        await wait_idle(pilot, app)
    [conversation] = runtime.log.list_conversations()
    [reply] = [t for t in runtime.log.conversation_turns(conversation.id) if t.role == "assistant"]
    assert reply.sampler["mode"] == "adaptive" and reply.sampler["entropy_high"] == 2.0
    steps = runtime.log.token_steps(reply.id)
    assert steps and all(s.action in ("argmax", "sample", "explore", "pause") for s in steps)
    assert all(s.varentropy is not None and s.varentropy >= 0 for s in steps)
