"""Persona files are checked like the config: a sampler value of the wrong TOML type is refused."""

from __future__ import annotations

import pytest

from agent.errors import ConfigError
from agent.llm.sampler import SamplerSettings
from agent.personas import PersonaBook


def test_a_persona_sampler_value_of_the_wrong_type_is_refused(make_config, tmp_path):
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "loose.toml").write_text('system_prompt = "x"\n[sampler]\ntemperature = "0.5"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"loose.toml: persona 'loose': sampler.temperature: wrong type"):
        PersonaBook(make_config(f'[chat]\npersonas_dir = "{folder}"\n'))


def test_a_well_typed_persona_file_loads(make_config, tmp_path):
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "calm.toml").write_text('system_prompt = "Be calm."\n[sampler]\ntemperature = 0.2\nstop = ["END"]\n', encoding="utf-8")
    persona = PersonaBook(make_config(f'[chat]\npersonas_dir = "{folder}"\n')).get("calm")
    sampler = persona.sampler(SamplerSettings())
    assert sampler.temperature == 0.2 and sampler.stop == ("END",)
