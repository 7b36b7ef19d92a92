"""A tiny mixture-of-experts GGUF fabricated for the MoE routing tests and bench.

Mixtral layout: architecture ``llama`` with ``llama.expert_count`` / ``llama.expert_used_count``,
a router (``blk.N.ffn_gate_inp``) and stacked experts (``blk.N.ffn_{gate,up,down}_exps``) in every
layer. Random F32 weights, a byte-level GPT-2 style vocabulary (the 256 bytes, a few merges, the
ChatML special tokens) and a ChatML chat template, so it chats through the real llama.cpp backend;
greedy replies never pick an end token, so they run to ``max_tokens``. About 0.25 MB at the
default size. llama.cpp normalises Mixtral's top-k gate weights (softmax over all experts, then
the chosen ones renormalised to sum to 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MERGES = ("Ġ t", "h e", "Ġt he", "i n", "e r")


@dataclass(frozen=True)
class MoEDims:
    """Size of the fabricated model."""

    n_embd: int = 32
    n_layer: int = 2
    n_expert: int = 4
    n_expert_used: int = 2
    n_ff: int = 48
    n_head: int = 4
    n_head_kv: int = 2
    n_ctx: int = 512


def _byte_symbols() -> list[str]:
    """GPT-2's byte -> printable-unicode table, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def _vocab() -> tuple[list[str], list[int]]:
    tokens = _byte_symbols() + ["".join(m.split(" ")) for m in MERGES] + list(SPECIALS)
    types = [1] * (len(tokens) - len(SPECIALS)) + [3] * len(SPECIALS)  # 1 normal, 3 control
    return tokens, types


def write_tiny_moe_gguf(path: Path, dims: MoEDims = MoEDims(), *, seed: int = 0) -> Path:
    """Write the fabricated Mixtral-style GGUF to ``path`` and return it."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens, types = _vocab()
    e, f, n_vocab = dims.n_embd, dims.n_ff, len(tokens)
    head_dim = e // dims.n_head

    def rand(*shape: int, scale: float = 1.0) -> np.ndarray:  # numpy shape = GGUF dims reversed
        return (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-moe (fabricated)")
    writer.add_context_length(dims.n_ctx)
    writer.add_embedding_length(e)
    writer.add_block_count(dims.n_layer)
    writer.add_feed_forward_length(f)
    writer.add_head_count(dims.n_head)
    writer.add_head_count_kv(dims.n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_expert_count(dims.n_expert)
    writer.add_expert_used_count(dims.n_expert_used)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(list(MERGES))
    writer.add_bos_token_id(tokens.index("<|im_start|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    writer.add_tensor("token_embd.weight", rand(n_vocab, e, scale=4.0))
    writer.add_tensor("output_norm.weight", np.ones(e, dtype=np.float32))
    output = rand(n_vocab, e, scale=8.0)
    output[-len(SPECIALS):] = 0.0  # the special tokens' logits stay 0, below the best of 260 others:
    writer.add_tensor("output.weight", output)  # greedy replies run to max_tokens (steady benchmarks)
    kv = dims.n_head_kv * head_dim
    for i in range(dims.n_layer):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(e, dtype=np.float32))
        writer.add_tensor(f"{blk}.attn_q.weight", rand(e, e))
        writer.add_tensor(f"{blk}.attn_k.weight", rand(kv, e))
        writer.add_tensor(f"{blk}.attn_v.weight", rand(kv, e))
        writer.add_tensor(f"{blk}.attn_output.weight", rand(e, e))
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(e, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate_inp.weight", rand(dims.n_expert, e, scale=3.0))
        writer.add_tensor(f"{blk}.ffn_gate_exps.weight", rand(dims.n_expert, f, e))
        writer.add_tensor(f"{blk}.ffn_up_exps.weight", rand(dims.n_expert, f, e))
        writer.add_tensor(f"{blk}.ffn_down_exps.weight", rand(dims.n_expert, e, f))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def tiny_moe_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fabricated MoE GGUF (written once per test session)."""
    return write_tiny_moe_gguf(tmp_path_factory.mktemp("moe") / "tiny-moe.gguf")


def load_tiny_moe(folder: Path, gguf: Path, *, capture: bool) -> Any:
    """The real llama.cpp backend on ``gguf`` with ``[llm] moe_routing`` on or off."""
    from agent.config_load import load_config
    from agent.llm import load_backend

    config = folder / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{folder / "data"}"\n[llm]\nmodel = "{gguf}"\ncontext_size = 512\n'
                      f"threads = 2\nmoe_routing = {'true' if capture else 'false'}\n", encoding="utf-8")
    return load_backend(load_config(config, env={}))


@pytest.fixture(scope="module")
def moe_on(tmp_path_factory: pytest.TempPathFactory, tiny_moe_gguf: Path) -> Iterator[Any]:
    """The fabricated MoE model with routing capture on."""
    model = load_tiny_moe(tmp_path_factory.mktemp("on"), tiny_moe_gguf, capture=True)
    yield model
    model.close()


@pytest.fixture(scope="module")
def moe_off(tmp_path_factory: pytest.TempPathFactory, tiny_moe_gguf: Path) -> Iterator[Any]:
    """The fabricated MoE model with routing capture off (no eval callback)."""
    model = load_tiny_moe(tmp_path_factory.mktemp("off"), tiny_moe_gguf, capture=False)
    yield model
    model.close()
