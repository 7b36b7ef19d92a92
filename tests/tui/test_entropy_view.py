"""The entropy view (Ctrl+E) driven with the pilot: the real engine on the starter model, its real
SQLite log, and fabricated turns written into that same log where a reply needs reasoning,
adaptive actions or no telemetry (the starter model produces none of those)."""

from __future__ import annotations

import dataclasses
import math

from textual.widgets import Static

from tests.test_curves import THINK, reply, steps_of
from tests.tui.conftest import SIZE, send, wait_idle, wait_until
from tui.screens.entropy_view import EntropyViewScreen
from tui.screens.history import HistoryScreen
from tui.widgets.curve_chart import (
    ACTION_MARKS,
    CURSOR,
    CURSOR_BG,
    FIRST,
    GUTTER,
    REASONING_BG,
    SECOND,
    Band,
    CurveChart,
    axis_cells,
    band_cells,
    chart_content,
)
from tui.widgets.tokens import visible_piece


def _text(screen: EntropyViewScreen, widget_id: str) -> str:
    return str(screen.query_one(widget_id, Static).render())


def _chart_lines(screen: EntropyViewScreen) -> list[str]:
    return str(screen.query_one(CurveChart).render()).splitlines()


async def _open(pilot, app) -> EntropyViewScreen:
    await pilot.press("ctrl+e")
    await wait_until(pilot, lambda: isinstance(app.screen, EntropyViewScreen))
    screen = app.screen
    assert isinstance(screen, EntropyViewScreen)
    await wait_until(pilot, lambda: screen.curves is not None or screen.has_class("-notice"))
    await pilot.pause()
    return screen


def _panel_shows(screen: EntropyViewScreen, step) -> bool:
    side = _text(screen, "#ev-side")
    entropy = "not recorded" if step.entropy is None else f"{step.entropy:.3f}"
    return visible_piece(step.text) in side and f"entropy     {entropy}" in side and f"token #{step.index} " in side


async def test_the_cursor_walks_the_reply_and_c_overlays_its_regenerated_alternative(app, runtime):
    runtime.engine.set_sampler(max_tokens=12)  # two short real replies keep the test fast
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Name three colours of the sea.")
        await wait_idle(pilot, app)
        await pilot.press("ctrl+r")
        await wait_idle(pilot, app)
        first, again = [t for t in runtime.log.conversation_turns(runtime.engine.conversation_id) if t.role == "assistant"]
        steps = runtime.log.token_steps(again.id)
        screen = await _open(pilot, app)
        assert screen.curves is not None and screen.curves.turn_id == again.id  # the reply in use
        title = _text(screen, "#ev-title")
        assert f"#{again.id} assistant" in title and f"{len(steps)} tokens" in title and "Name three colours" in title
        assert _panel_shows(screen, steps[0])
        await pilot.press("right", "right", "right")
        assert screen.cursor == 3 and _panel_shows(screen, steps[3])
        lp = steps[3].logprob
        assert f"logprob     {lp:.3f}  (p {math.exp(lp):.1%})" in _text(screen, "#ev-side")
        await pilot.press("end")
        assert screen.cursor == len(steps) - 1 and _panel_shows(screen, steps[-1])
        await pilot.press("right")  # the cursor stops at the last token
        assert screen.cursor == len(steps) - 1
        axis = _chart_lines(screen)[-1]
        chart = screen.query_one(CurveChart)
        assert chart.view is not None and axis[GUTTER + screen.cursor - chart.view.start] == "▲"
        await pilot.press("home", "left")
        assert screen.cursor == 0 and _panel_shows(screen, steps[0])
        await pilot.press("pagedown")
        assert screen.cursor == min(len(steps) - 1, chart.columns)  # one chart width on

        assert [c.turn_id for c in screen.comparables] == [first.id]
        assert "⣿" not in _text(screen, "#ev-legend")
        await pilot.press("c")
        await wait_until(pilot, lambda: screen.compared_curves is not None)
        await pilot.pause()
        legend = _text(screen, "#ev-legend")
        assert "⣿" in legend and f"#{first.id} assistant" in legend and "aligned by start" in legend
        assert any(SECOND in str(span.style) for span in chart.render().spans)  # the second curve is drawn
        first_steps = runtime.log.token_steps(first.id)
        await pilot.press("home")
        side = _text(screen, "#ev-side")
        assert f"compared #{first.id} (regenerated alternative #{first.id})" in side
        assert f"{visible_piece(first_steps[0].text)}  H {first_steps[0].entropy:.2f}" in side
        await pilot.press("c")  # one alternative: the next c compares nothing again
        assert screen.compared is None and "⣿" not in _text(screen, "#ev-legend")
        assert not any(SECOND in str(span.style) for span in chart.render().spans)
        await pilot.press("escape")
        assert app.screen is app.conversation
        await pilot.press("f5")  # the history screen opens the previewed conversation's last reply
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.last_reply == again.id)
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: isinstance(app.screen, EntropyViewScreen) and app.screen.curves is not None)
        assert app.screen.curves.turn_id == again.id


async def test_turns_without_curves_show_a_notice(app, runtime):
    conversation = runtime.log.new_conversation(persona="assistant")
    bare = runtime.log.add_assistant_turn(reply(conversation, None, ["Hm"], steps=[]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+e")  # nothing logged in this conversation yet: a notice, not an error
        await wait_until(pilot, lambda: isinstance(app.screen, EntropyViewScreen))
        assert "No logged reply yet" in _text(app.screen, "#ev-notice") and app.screen.has_class("-notice")
        await pilot.press("escape")
        app.push_screen(EntropyViewScreen(runtime.log, bare))
        await wait_until(pilot, lambda: isinstance(app.screen, EntropyViewScreen) and app.screen.has_class("-notice"))
        assert f"turn {bare} has no token telemetry" in _text(app.screen, "#ev-notice")
        assert not app.screen.query_one(CurveChart).display
        await pilot.press("right", "c")  # keys do nothing without curves
        await pilot.press("escape")
        app.push_screen(EntropyViewScreen(runtime.log, 424242))
        await wait_until(pilot, lambda: isinstance(app.screen, EntropyViewScreen) and app.screen.has_class("-notice"))
        assert "no turn 424242" in _text(app.screen, "#ev-notice")


async def test_reasoning_is_shaded_actions_coloured_and_old_rows_lack_varentropy(app, runtime):
    conversation = runtime.log.new_conversation(persona="assistant")
    actions = ("argmax", "sample", "explore", "pause")
    adaptive = [dataclasses.replace(s, varentropy=0.2 * s.index, action=actions[s.index % 4]) for s in steps_of(THINK)]
    think = runtime.log.add_assistant_turn(reply(conversation, None, THINK, steps=adaptive))
    old = runtime.log.add_assistant_turn(reply(conversation, None, ["Yes", "."]))
    runtime.log.add_assistant_turn(reply(conversation, None, ["Yes", ".", " Sure"], alternative_of=think))
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(EntropyViewScreen(runtime.log, think))
        await wait_until(pilot, lambda: isinstance(app.screen, EntropyViewScreen) and app.screen.curves is not None)
        screen = app.screen
        assert isinstance(screen, EntropyViewScreen)
        await pilot.pause()
        await pilot.press("right", "right")
        side = _text(screen, "#ev-side")
        assert "token #2 · reasoning" in side and "varentropy  0.400 nats²" in side and "action      explore" in side
        assert "' dog'" not in side and "·dog" in side  # the alternative, whitespace made visible
        view = screen.query_one(CurveChart).view
        assert view is not None
        content = chart_content(view, 60, 20)
        lines = str(content).splitlines()
        [act] = [line for line in lines if line.strip().startswith("act")]
        assert act[GUTTER:GUTTER + len(THINK)] == "".join(ACTION_MARKS[actions[i % 4]][0] for i in range(len(THINK)))
        row = next(i for i, line in enumerate(lines) if line.startswith("  ") and "┤" in line)
        offset = sum(len(line) + 1 for line in lines[:row]) + GUTTER
        backgrounds = [_background_at(content, offset + p) for p in range(len(THINK))]
        assert backgrounds[:5] == [REASONING_BG.lower(), REASONING_BG.lower(), CURSOR_BG.lower(), REASONING_BG.lower(), REASONING_BG.lower()]
        assert backgrounds[5:] == [None] * (len(THINK) - 5)  # the answer is not shaded
        await pilot.press("c")  # the alternative without reasoning, then aligned by the first answer token
        await wait_until(pilot, lambda: screen.compared_curves is not None)
        await pilot.press("a")
        assert "aligned by answer" in _text(screen, "#ev-legend") and screen.cursor == 2  # still on token #2
        await pilot.press("right", "right", "right")
        side = _text(screen, "#ev-side")
        assert "token #5 · answer" in side and "\n  Yes  H " in side  # both answers start here
        await pilot.press("escape")
        app.push_screen(EntropyViewScreen(runtime.log, old))
        await wait_until(pilot, lambda: isinstance(app.screen, EntropyViewScreen) and app.screen.curves is not None)
        await pilot.pause()
        assert "varentropy  not recorded" in _text(app.screen, "#ev-side")
        assert any("varentropy: not recorded" in line for line in _chart_lines(app.screen))


def _background_at(content, index: int) -> str | None:
    """The background colour the chart's content gives the character at ``index`` (None: none)."""
    found = None
    for span in content.spans:
        if span.start <= index < span.end:
            text = str(span.style)
            found = text.split(" on ")[1].split()[0].lower() if " on " in text else found
    return found


def test_bars_are_eighth_blocks_and_the_compared_curve_braille_dots() -> None:
    band = Band("entropy", [0.0, 1.0, 2.0, None, 0.3], [2.0, None, 0.0, 1.0, None], top=2.0)
    grid = band_cells(band, 2, range(5), cursor=4, shaded=[False, True, False, False, False])
    columns = ["".join(row[c][0] for row in grid) for c in range(5)]
    assert columns == ["⠉ ", " █", "█⣀", "⣀ ", " ▂"]  # 0.3 of 2.0 over 16 eighths: 2 eighths
    assert grid[1][2][1] == f"bold {SECOND} on {FIRST}"  # a dot over a full bar sits on the bar's colour
    assert grid[0][1][1].endswith(f"on {REASONING_BG}") and grid[0][4][1] == f"{CURSOR} on {CURSOR_BG}"
    assert "".join(c[0] for c in axis_cells(range(8, 23), cursor=12)) == "  10▲       20 "  # the cursor over its column
