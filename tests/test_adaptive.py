"""Entropy-adaptive sampling (``sampler.mode = "adaptive"``) on the real starter model via llama.cpp:
the action chosen per token, what each action does, the bounded pause, logging, and refusals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from agent.config_load import load_config
from agent.errors import ConfigError, UserError
from agent.llm.base import run_generation
from agent.llm.sampler import ADAPTIVE_ACTIONS, SamplerSettings
from agent.log import DialogueLog
from tests.llm_fixtures import chat
from tests.test_log import make_reply

STORY = chat(("system", "You are a helpful assistant."), ("user", "Tell me a short story about a cat."))
RUSSIAN = chat(("user", "Расскажи коротко про море."))
BASE = SamplerSettings(temperature=0.8, seed=11, max_tokens=20)
ADAPTIVE = BASE.merged({"mode": "adaptive"})
NEVER = 1e9  # a threshold no entropy or varentropy reaches
PAUSE = " Hmm, let me think."


def _generate(model, messages, sampler):
    model.clear_cache()  # the same prompt evaluation for every reply, so replies compare token for token
    return run_generation(model.generate(model.render_prompt(messages), sampler))


def _ids(result) -> list[int]:
    return [s.token_id for s in result.steps]


def test_the_action_follows_the_thresholds():
    s = SamplerSettings(entropy_low=0.5, entropy_high=3.0, varentropy_low=1.5, varentropy_high=6.0, pause_text="…")
    assert s.adaptive_action(0.2, 1.0, may_pause=True) == "argmax"
    assert s.adaptive_action(0.2, 2.0, may_pause=True) == "sample"  # confident, but a long tail
    assert s.adaptive_action(1.5, 3.0, may_pause=True) == "sample"
    assert s.adaptive_action(3.5, 3.0, may_pause=True) == "explore"
    assert s.adaptive_action(1.0, 7.0, may_pause=True) == "explore"
    assert s.adaptive_action(3.5, 7.0, may_pause=True) == "pause"
    assert s.adaptive_action(3.5, 7.0, may_pause=False) == "explore"
    assert s.merged({"pause_text": ""}).adaptive_action(3.5, 7.0, may_pause=True) == "explore"


def test_every_token_logs_its_action_and_the_log_keeps_it(starter_model, tmp_path: Path):
    result = _generate(starter_model, STORY, ADAPTIVE)
    actions = [s.action for s in result.steps]
    assert result.steps and all(a in ADAPTIVE_ACTIONS for a in actions)
    assert len(set(actions)) >= 2, Counter(actions)  # default thresholds: a real mix on a story
    for step in result.steps:  # the action is the one the thresholds give for the logged numbers
        assert step.action == ADAPTIVE.adaptive_action(step.entropy, step.varentropy, may_pause=False)
    assert all(s.action is None for s in _generate(starter_model, STORY, BASE).steps)
    with DialogueLog(tmp_path / "dialogues.sqlite3", busy_timeout=0.5) as log:
        turn = log.add_assistant_turn(make_reply(log.new_conversation(persona="assistant"), None, steps=result.steps))
        stored = log.token_steps(turn)
    assert [s.action for s in stored] == actions
    np.testing.assert_allclose([s.varentropy for s in stored], [s.varentropy for s in result.steps], rtol=1e-6)


def test_same_seed_same_adaptive_reply(starter_model):
    first, again = _generate(starter_model, RUSSIAN, ADAPTIVE), _generate(starter_model, RUSSIAN, ADAPTIVE)
    assert _ids(first) == _ids(again) and [s.action for s in first.steps] == [s.action for s in again.steps]


def test_thresholds_that_force_argmax_reply_as_temperature_zero(starter_model):
    forced = ADAPTIVE.merged({"entropy_low": NEVER, "entropy_high": NEVER, "varentropy_low": NEVER, "varentropy_high": NEVER})
    adaptive = _generate(starter_model, STORY, forced)
    greedy = _generate(starter_model, STORY, BASE.merged({"temperature": 0.0}))
    assert {s.action for s in adaptive.steps} == {"argmax"}
    assert _ids(adaptive) == _ids(greedy) and adaptive.text == greedy.text


def test_thresholds_that_force_explore_sample_the_widened_distribution(starter_model):
    forced = ADAPTIVE.merged({"entropy_low": 0.0, "entropy_high": 0.0, "explore_temp": 2.5, "explore_top_k": 0})
    explored = _generate(starter_model, STORY, forced)
    assert {s.action for s in explored.steps} == {"explore"}
    # exactly the fixed sampler at the explore temperature and top-k (its chain is seeded seed + 1)
    same = _generate(starter_model, STORY, BASE.merged({"temperature": 2.5, "top_k": 0, "seed": BASE.seed + 1}))
    assert _ids(explored) == _ids(same)
    # and not what the normal sampler picks: over a few seeds, the chosen tokens are less likely
    normal_lp, explore_lp = [], []
    for seed in range(3):
        normal_lp += [s.logprob for s in _generate(starter_model, STORY, BASE.merged({"seed": seed})).steps]
        explore_lp += [s.logprob for s in _generate(starter_model, STORY, forced.merged({"seed": seed})).steps]
    assert np.mean(explore_lp) < np.mean(normal_lp) - 0.25, (np.mean(explore_lp), np.mean(normal_lp))


@pytest.mark.parametrize("pause_max", [0, 1, 2])
def test_pause_text_is_inserted_when_forced_at_most_pause_max_times(starter_model, pause_max: int):
    pause_ids = [t for t, _ in starter_model.tokenize_pieces(PAUSE)]
    forced = ADAPTIVE.merged({"entropy_high": 0.0, "varentropy_high": 0.0, "entropy_low": 0.0, "varentropy_low": 0.0,
                              "pause_text": PAUSE, "pause_max": pause_max, "max_tokens": 30})
    result = _generate(starter_model, STORY, forced)
    actions = [s.action for s in result.steps]
    assert actions.count("pause") == pause_max * len(pause_ids)
    assert result.text.count(PAUSE.strip()) == pause_max
    assert actions[: pause_max * len(pause_ids)] == ["pause"] * (pause_max * len(pause_ids))  # back to back: both always high
    assert _ids(result)[: len(pause_ids)] == (pause_ids if pause_max else _ids(result)[: len(pause_ids)])
    assert set(actions[pause_max * len(pause_ids):]) == {"explore"}


def test_invalid_mode_and_thresholds_are_refused_in_one_line(tmp_path: Path):
    for body, words in [('mode = "entropix"', "mode"), ("entropy_low = 4.0\nentropy_high = 2.0", "entropy_low"),
                        ("varentropy_high = -1.0", "varentropy_high"), ("pause_max = 100", "pause_max")]:
        config = tmp_path / "config.toml"
        config.write_text(f"[sampler]\n{body}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_config(config, env={})
        message = str(err.value)
        assert "\n" not in message and words in message, message
    with pytest.raises(ValidationError):
        ADAPTIVE.merged({"varentropy_low": 9.0, "varentropy_high": 1.0})


def test_backends_that_cannot_adapt_refuse_it(starter_model):
    from agent.llm.exllamav2.sampler import settings_mapping
    from agent.llm.openai.sampling import check_remote_sampler

    with pytest.raises(UserError, match="mirostat_mode"):
        starter_model.check_sampler(ADAPTIVE.merged({"mirostat_mode": 2}))
    starter_model.check_sampler(ADAPTIVE)
    with pytest.raises(ConfigError, match="llama_cpp backend only"):
        settings_mapping(ADAPTIVE)
    with pytest.raises(UserError, match="mode"):
        check_remote_sampler(ADAPTIVE)
    settings_mapping(BASE.merged({"pause_text": "x"}))  # adaptive values alone are inert in fixed mode
    check_remote_sampler(BASE.merged({"entropy_high": 1.0}))


def test_a_persona_can_switch_adaptive_sampling_on_and_bad_thresholds_name_the_key(tmp_path: Path):
    from agent.personas import PersonaBook

    (tmp_path / "personas").mkdir()
    (tmp_path / "config.toml").write_text('[chat]\npersonas_dir = "personas"\n', encoding="utf-8")
    persona = tmp_path / "personas" / "curious.toml"
    persona.write_text('system_prompt = "Wonder aloud."\nsampler = { mode = "adaptive", entropy_high = 2.0, pause_text = " Hmm." }\n',
                       encoding="utf-8")
    sampler = PersonaBook(load_config(tmp_path / "config.toml", env={})).get("curious").sampler(SamplerSettings())
    assert (sampler.mode, sampler.entropy_high, sampler.pause_text) == ("adaptive", 2.0, " Hmm.")
    persona.write_text('system_prompt = "x"\nsampler = { mode = "adaptive", varentropy_high = 0.5 }\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        PersonaBook(load_config(tmp_path / "config.toml", env={}))
    assert "\n" not in str(err.value) and "sampler.varentropy_high" in str(err.value) and "varentropy_low" in str(err.value)
