"""The crash-trial script itself: SIGKILL ``chat --once`` and ``reply`` at random moments; the log
must pass every check (integrity, earlier turns intact, killed turns marked)."""

from __future__ import annotations

from bench.crash_trials import main


def test_crash_trials_find_no_defect(capsys):
    assert main(["-n", "4", "--targets", "chat,reply", "--seed", "3", "--max-tokens", "96"]) == 0
    out = capsys.readouterr().out
    assert "4 trials, 0 defects" in out and "   4  integrity ok\n" in out and "   4  earlier turns intact\n" in out
