"""Fabricate random Llama models (FP16 safetensors folders) and PEFT LoRAs for the GPU check.

Dimensions are multiples of 128 with head_dim 128, which exllamav2's FP16 kernels handle. The
tokenizer is a small byte-level BPE trained on the spot with a ChatML-style template, so the
folder is a complete model folder (config, weights, tokenizer, chat template, generation config).

    python tests/gpu/fabricate.py small /tmp/m     # ~100 MB, for correctness tests
    python tests/gpu/fabricate.py 8b /tmp/m8b      # Llama-3-8B shapes, ~16 GB, for speed
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog. One, two, three, four, five.",
    "Привет! Как дела? Сегодня хорошая погода, и мы говорим по-русски.",
    "def add(a, b):\n    return a + b\n# numbers 0123456789",
]
SHAPES = {
    "small": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=2, vocab_size=1024),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256),
}


def make_tokenizer(folder: Path, vocab_size: int = 1000) -> dict[str, int]:
    """Train and save a byte-level BPE tokenizer with a chat template; returns special token ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 50, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHATML, "eos_token": "<|im_end|>",
        "bos_token": None, "pad_token": "<|endoftext|>", "model_max_length": 4096,
    }))
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]]}))
    return ids


def make_llama(folder: Path, shape: str = "small", *, seed: int = 0, device: str = "cpu", init: float = 0.05) -> None:
    """A random FP16 Llama with the given shape, saved as safetensors with a tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    ids = make_tokenizer(folder)
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, rms_norm_eps=1e-5, initializer_range=init,
                         bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         tie_word_embeddings=False, torch_dtype="float16")
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(folder, max_shard_size="4GB")
    cfg_path = folder / "config.json"  # older readers (exllamav2) look for these flat keys
    cfg = json.loads(cfg_path.read_text()) | {"rope_theta": 10000.0, "torch_dtype": "float16"}
    cfg_path.write_text(json.dumps(cfg, indent=2))


def make_lora(base: Path, folder: Path, *, rank: int = 16, alpha: int = 32, seed: int = 1) -> None:
    """A PEFT LoRA on all seven projections with random (non-zero) A and B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_" in name:
                p.mul_(0.5)  # a visible but not overwhelming change of the logits
    peft.save_pretrained(folder)


if __name__ == "__main__":
    what, out = sys.argv[1], Path(sys.argv[2])
    make_llama(out, what, device="cuda" if what == "8b" else "cpu")
    if what == "small":
        make_lora(out, out.with_name(out.name + "-lora"))
    print(f"fabricated {what} model in {out}")
