"""MoE routing capture with every layer offloaded to the GPU: the routing tensors live in device
memory and are read with ggml_backend_tensor_get; it must match the CPU capture exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.config_load import load_config
from agent.llm import load_backend
from agent.llm.base import ChatMessage, run_generation
from agent.llm.sampler import SamplerSettings
from tests.moe_fixtures import tiny_moe_gguf  # noqa: F401  (fixture)


def _routing(folder: Path, gguf: Path, gpu_layers: int):  # noqa: ANN202
    config = folder / f"gpu{gpu_layers}.toml"
    config.write_text(f'[paths]\ndata_dir = "{folder}"\n[llm]\nmodel = "{gguf}"\ncontext_size = 512\n'
                      f"gpu_layers = {gpu_layers}\nmoe_routing = true\n", encoding="utf-8")
    model = load_backend(load_config(config, env={}))
    try:
        prompt = model.render_prompt([ChatMessage("user", "hello there")])
        return run_generation(model.generate(prompt, SamplerSettings(temperature=0.0, max_tokens=16)))
    finally:
        model.close()


def test_gpu_capture_matches_the_cpu(tmp_path: Path, tiny_moe_gguf: Path) -> None:  # noqa: F811
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python build has no GPU offload")
    cpu, gpu = _routing(tmp_path, tiny_moe_gguf, 0), _routing(tmp_path, tiny_moe_gguf, -1)
    assert cpu.moe_routing is not None and gpu.moe_routing is not None
    assert [s.token_id for s in cpu.steps] == [s.token_id for s in gpu.steps]
    assert (cpu.moe_routing.experts == gpu.moe_routing.experts).all()
    assert np.allclose(cpu.moe_routing.weights, gpu.moe_routing.weights, atol=1e-3)
