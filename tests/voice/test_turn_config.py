"""``[vad] end_of_turn`` / ``early_start``: validated like every key, and the Smart Turn model they
need is loaded, or its absence is one clear line (silence mode keeps working without it)."""

from __future__ import annotations

import pytest

from agent.errors import ConfigError
from agent.voice.setup import load_turn_policy
from audio.errors import AudioModelError
from audio.turn_end import SmartTurnDetector


@pytest.fixture
def no_pipecat(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the pipecat-ai wheel were not installed: the locator looks for a package that is not."""
    load = SmartTurnDetector.load.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(SmartTurnDetector, "load", classmethod(lambda cls, *a, **k: load(cls, package="no_such_pipecat")))


def test_a_bad_mode_names_the_choices(make_config):
    with pytest.raises(ConfigError) as caught:
        make_config('[vad]\nend_of_turn = "semantic"\n')
    message = str(caught.value)
    assert "end_of_turn" in message and "'silence', 'model' or 'both'" in message and "\n" not in message


def test_the_default_is_both_with_the_model_loaded(make_config):
    policy = load_turn_policy(make_config())
    assert policy.mode == "both" and policy.early_start and isinstance(policy.detector, SmartTurnDetector)


def test_silence_without_early_start_needs_no_model(make_config, no_pipecat):
    policy = load_turn_policy(make_config('[vad]\nend_of_turn = "silence"\nearly_start = false\n'))
    assert policy.mode == "silence" and policy.detector is None


def test_without_the_wheel_the_model_modes_say_how_to_install_it(make_config, no_pipecat):
    with pytest.raises(AudioModelError) as caught:
        load_turn_policy(make_config('[vad]\nend_of_turn = "model"\n'))
    message = str(caught.value)
    assert "pip install --no-deps pipecat-ai" in message and 'end_of_turn = "silence"' in message and "\n" not in message


def test_without_the_wheel_silence_mode_keeps_working_without_the_early_start(make_config, no_pipecat):
    policy = load_turn_policy(make_config('[vad]\nend_of_turn = "silence"\nearly_start = true\n'))
    assert policy.mode == "silence" and not policy.early_start and policy.detector is None
