"""``epistemic log plot`` and the chart behind it, on real SQLite logs and real matplotlib."""

from __future__ import annotations

import dataclasses
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.cli import main
from agent.instruments.chart import ACTION_COLOURS, ChartRequest, draw
from agent.instruments.curves import load_curves
from agent.log import DialogueLog
from agent.records import UserTurnRecord
from tests.test_curves import THINK, reply, steps_of

ACTIONS = ("argmax", "sample", "explore", "pause")


def adaptive(pieces: list[str]) -> list:
    """Steps as the adaptive sampler logs them: a varentropy and an action per token."""
    return [dataclasses.replace(s, varentropy=0.3 * s.index + 0.1, action=ACTIONS[s.index % 4]) for s in steps_of(pieces)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dialogues.sqlite3"


@pytest.fixture
def turns(db_path: Path) -> dict[str, int]:
    with DialogueLog(db_path) as log:
        conversation = log.new_conversation(persona="assistant")
        user = log.add_user_turn(UserTurnRecord(conversation, "Do cats purr?"))
        think = log.add_assistant_turn(reply(conversation, user, THINK, steps=adaptive(THINK),
                                             adapters=[{"id": "calm", "scale": 0.5}]))
        old = log.add_assistant_turn(reply(conversation, user, ["Yes", "."], alternative_of=think))  # no varentropy
        bare = log.add_assistant_turn(reply(conversation, user, ["Hm"], steps=[]))
    return {"user": user, "think": think, "old": old, "bare": bare}


def cli(db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real entry point in this process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("EPISTEMIC_LOG__PATH", str(db_path))
    with pytest.raises(SystemExit) as done:
        main(["log", "plot", *args])
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _line(axis, label: str):
    [found] = [line for line in axis.lines if line.get_label() == label]
    return found


def _nan(values) -> list[float]:
    return [math.nan if v is None else v for v in values]


def test_the_chart_draws_the_decoded_telemetry(db_path: Path, turns: dict[str, int]) -> None:
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Rectangle

    with DialogueLog(db_path, readonly=True) as log:
        stored = log.token_steps(turns["think"])
        fig = draw(ChartRequest(load_curves(log, turns["think"])))
    top, bottom, var_axis = fig.axes
    tid = turns["think"]
    entropy = _line(top, f"entropy #{tid}")
    assert list(entropy.get_xdata()) == list(range(len(THINK)))
    assert list(entropy.get_ydata()) == [s.entropy for s in stored]
    assert list(_line(var_axis, f"varentropy #{tid}").get_ydata()) == [s.varentropy for s in stored]
    assert list(_line(bottom, f"logprob #{tid}").get_ydata()) == [s.logprob for s in stored]
    [shade] = [p for p in top.patches if p.get_label() == f"reasoning #{tid}"]
    assert isinstance(shade, Rectangle) and shade.get_x() == pytest.approx(-0.5) and shade.get_width() == pytest.approx(5.0)  # tokens 0-4 think
    for collection in top.collections:  # one marker set per action, at the tokens that took it
        action = str(collection.get_label())
        colour = np.asarray(collection.get_facecolor())[0][:3].tolist()
        assert colour == pytest.approx(to_rgb(ACTION_COLOURS[action]))
        want = [v for s in stored if s.action == action for v in (s.index, s.entropy)]
        assert np.asarray(collection.get_offsets()).ravel().tolist() == pytest.approx(want)
    assert sorted(str(c.get_label()) for c in top.collections) == sorted(ACTIONS)
    assert "calm×0.5" in fig.get_suptitle() and "Do cats purr?" in fig.get_suptitle()


def test_a_second_turn_is_overlaid_and_old_rows_say_varentropy_was_not_recorded(db_path: Path, turns: dict[str, int]) -> None:
    with DialogueLog(db_path, readonly=True) as log:
        think, old = load_curves(log, turns["think"]), load_curves(log, turns["old"])
        old_steps = log.token_steps(turns["old"])
    fig = draw(ChartRequest(think, old, anchor="answer"))
    top, bottom, var_axis = fig.axes
    second = _line(top, f"entropy #{turns['old']}")
    assert list(second.get_xdata()) == [5, 6] and list(second.get_ydata()) == [s.entropy for s in old_steps]
    assert second.get_color() != _line(top, f"entropy #{turns['think']}").get_color()
    assert [line.get_label() for line in var_axis.lines] == [f"varentropy #{turns['think']}"]  # no zeros drawn
    legend = top.get_legend()
    assert legend is not None and f"varentropy #{turns['old']}: not recorded" in [t.get_text() for t in legend.get_texts()]
    alone = draw(ChartRequest(old))
    assert not alone.axes[2].lines and "varentropy not recorded" in [t.get_text() for t in alone.axes[0].texts]
    assert list(_line(alone.axes[1], f"logprob #{turns['old']}").get_ydata()) == _nan([s.logprob for s in old_steps])


def test_plot_writes_a_png_of_the_requested_size(db_path: Path, turns: dict[str, int], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chart.png"
    code, stdout, err = cli(db_path, monkeypatch, capsys, str(turns["think"]), str(turns["old"]), "-o", str(out),
                            "--width", "900", "--height", "500")
    assert code == 0, err
    assert png_size(out) == (900, 500) and f"wrote {out} (900×500)" in stdout
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(db_path, monkeypatch, capsys, str(turns["think"]))
    assert code == 0, err
    assert png_size(tmp_path / f"entropy-{turns['think']}.png") == (1400, 800)


def test_bad_requests_are_one_line_and_non_zero(db_path: Path, turns: dict[str, int], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "c.png")
    cases = [
        ((str(999), "-o", out), 4, "no turn 999"),
        ((str(turns["user"]), "-o", out), 1, f"turn {turns['user']} is a user turn"),
        ((str(turns["think"]), str(turns["bare"]), "-o", out), 1, f"turn {turns['bare']} has no token telemetry"),
        ((str(turns["think"]), "-o", str(tmp_path / "missing" / "c.png")), 1, "no such folder for the chart"),
        ((str(turns["think"]), "-o", str(tmp_path)), 1, "is a folder"),
        ((str(turns["think"]), "-o", str(tmp_path / "c.svg")), 1, "the chart is a PNG image; name it .png"),
    ]
    for args, want_code, message in cases:
        code, _, err = cli(db_path, monkeypatch, capsys, *args)
        assert (code, err.count("\n")) == (want_code, 1) and message in err and "Traceback" not in err, (args, err)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = cli(db_path, monkeypatch, capsys, str(turns["think"]), "-o", str(locked / "c.png"))
    finally:
        locked.chmod(0o755)
    assert code == 1 and "cannot write the chart here (read-only)" in err and not (locked / "c.png").exists()
    assert not Path(out).exists()
    code, _, err = cli(tmp_path / "none.sqlite3", monkeypatch, capsys, "1")
    assert code == 4 and "no dialogue log yet" in err


def test_without_matplotlib_the_plot_extra_is_named(db_path: Path, turns: dict[str, int], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails as if not installed
    code, _, err = cli(db_path, monkeypatch, capsys, str(turns["think"]), "-o", str(tmp_path / "c.png"))
    assert code == 3 and "pip install 'epistemic-engine[plot]'" in err and err.count("\n") == 1
    assert not (tmp_path / "c.png").exists()
