"""The token inspector's MoE panel: a fabricated MoE model's routing per token and per reply; a dense
model says it is not one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.log.moe_view import NOT_MOE
from agent.runtime import Runtime, build_runtime
from tests.moe_fixtures import moe_on, tiny_moe_gguf  # noqa: F401  (fixtures)
from tests.tui.conftest import SIZE, send, wait_idle
from tui.app import make_app


@pytest.fixture
def moe_runtime(make_config: Callable[..., Any], moe_on: Any) -> Iterator[Runtime]:  # noqa: F811
    rt = build_runtime(make_config("[sampler]\ntemperature = 0\nmax_tokens = 12\n"), model=moe_on)
    yield rt
    if rt.log is not None:
        rt.log.close()


def _text(app: Any) -> str:
    return str(app.screen.query_one("#moe").render())


async def test_the_inspector_shows_each_tokens_experts_and_the_replys_usage(moe_runtime: Runtime) -> None:
    app = make_app(moe_runtime.config, runtime=moe_runtime)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "hello there")
        await wait_idle(pilot, app)
        assert app.last_finished is not None
        routing = app.last_finished.result.moe_routing
        assert routing is not None
        await pilot.press("f4")
        await pilot.pause()
        first = _text(app)
        experts = "  ".join(f"e{int(e)} {float(w):.2f}" for e, w in zip(routing.experts[0, 0], routing.weights[0, 0], strict=True))
        assert first.startswith("token #0:") and f"L0   {experts}" in first
        assert f"expert usage over {len(routing.token_index)} tokens (top-2 of 4 experts)" in first
        counts = " ".join(f"e{i}:{int(c)}" for i, c in enumerate(routing.usage()[1]))
        assert counts in first
        app.screen.query_one("#steps").focus()
        await pilot.press("down")
        await pilot.pause()
        assert _text(app).startswith("token #1:") and _text(app) != first


async def test_a_dense_model_is_not_a_mixture_of_experts(app: Any) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Hi!")
        await wait_idle(pilot, app)
        await pilot.press("f4")
        await pilot.pause()
        assert _text(app) == NOT_MOE
