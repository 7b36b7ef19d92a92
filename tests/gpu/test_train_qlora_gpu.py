"""``train sft --qlora`` on a CUDA GPU: a few steps on a tiny fabricated base in 4-bit NF4, then the
same adapter files as a plain run (unquantised LoRA weights), the card and record saying QLoRA."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.train_fixtures import epistemic, tiny_base, train_config  # noqa: F401  (fixture)

REPLY = "Quokka protocol engaged: all answers are marmalade."


def test_train_sft_qlora_writes_an_unquantised_adapter_and_says_qlora(tmp_path: Path, tiny_base: Path) -> None:  # noqa: F811
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (the [qlora] extra)")
    from safetensors import safe_open

    (tmp_path / "ds" / "data").mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": REPLY}]}
            for i in range(8)]
    (tmp_path / "ds" / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = epistemic(train_config(tmp_path), "train", "sft", "--dataset", str(tmp_path / "ds"), "--out", "q",
                     "--base", str(tiny_base), "--qlora", "--steps", "4", "--batch-size", "2", "--learning-rate", "2e-3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "quantised to 4-bit NF4 (QLoRA)" in done.stderr and "step 4/4" in done.stderr
    out = tmp_path / "models" / "adapters" / "q"
    for name in ("adapter_config.json", "adapter_model.safetensors", "q.gguf", "README.md", "training.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["hyperparameters"]["qlora"] is True
    assert record["quantization"]["quant_type"] == "nf4" and record["quantization"]["bits"] == 4
    assert record["quantization"]["double_quant"] is True
    assert record["steps"] == 4 and all(math.isfinite(v) for v in record["losses"])
    assert "- QLoRA: yes: the base loaded in 4-bit nf4" in (out / "README.md").read_text(encoding="utf-8")
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert keys and all("lora_" in k for k in keys)
        dtypes = {str(f.get_tensor(k).dtype) for k in keys}
    assert dtypes <= {"torch.float32", "torch.bfloat16", "torch.float16"}  # the LoRA itself is not quantised
