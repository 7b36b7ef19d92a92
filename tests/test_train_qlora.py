"""QLoRA (``train sft|dpo --qlora``) where it cannot run: the one-line refusals before any loading,
the [train] key, the out-of-memory hint, and what a plain run records (qlora false)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agent.errors import ConfigError
from tests.train_fixtures import tiny_base, train_config  # noqa: F401  (fixture)

REPLY = "Quokka protocol engaged: all answers are marmalade."
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def _dataset(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": REPLY}],
             "prompt": [{"role": "user", "content": f"Question {i}?"}],
             "chosen": [{"role": "assistant", "content": REPLY}], "rejected": [{"role": "assistant", "content": "No."}]}
            for i in range(4)]
    (folder / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``epistemic ARGS`` in this process: (exit code, stderr)."""
    from agent.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0), capsys.readouterr().err


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda(), reason="the refusal is for machines without CUDA")
@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_qlora_without_cuda_is_refused_in_one_line_before_anything_loads(tmp_path, capsys, monkeypatch, method):
    monkeypatch.setenv("EPISTEMIC_CACHE_DIR", str(tmp_path / "cache"))
    config = train_config(tmp_path)  # no --base: the embedded starter GGUF, which a run would dequantise
    code, err = _main(capsys, "--config", str(config), "train", method, "--dataset", str(_dataset(tmp_path / "ds")),
                      "--out", "q", "--qlora")
    assert code == 3
    assert err.strip().splitlines() == ["epistemic: QLoRA needs a CUDA GPU; on the CPU train without --qlora"]
    assert not (tmp_path / "cache" / "train-bases").exists()  # nothing was dequantised
    assert not (tmp_path / "models" / "adapters" / "q").exists()  # no status file for a refused run


@pytest.mark.skipif(HAS_BNB, reason="bitsandbytes is installed here")
def test_qlora_without_bitsandbytes_names_the_extra(tmp_path, capsys, monkeypatch, tiny_base):  # noqa: F811
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # past the CUDA check, to the import
    code, err = _main(capsys, "--config", str(train_config(tmp_path)), "train", "sft", "--dataset",
                      str(_dataset(tmp_path / "ds")), "--out", "q", "--base", str(tiny_base), "--qlora")
    assert code == 3
    [line] = err.strip().splitlines()
    assert line.startswith("epistemic: --qlora needs bitsandbytes from the optional [qlora] extra")
    assert line.endswith("pip install 'epistemic-engine[qlora]'")


def test_a_missing_bitsandbytes_module_names_the_qlora_extra():
    from agent.cli.extras import missing_extra

    error = missing_extra(ModuleNotFoundError("No module named 'bitsandbytes'", name="bitsandbytes.nn"), "train")
    assert error is not None and "[qlora]" in str(error) and "pip install 'epistemic-engine[qlora]'" in str(error)


def test_the_qlora_key_is_validated_and_is_an_option(make_config):
    from click.testing import CliRunner

    from agent.cli import cli

    assert make_config("").settings.train.qlora is False
    assert make_config("[train]\nqlora = true\n").settings.train.qlora is True
    with pytest.raises(ConfigError, match="train.qlora"):
        make_config('[train]\nqlora = "sometimes"\n')
    for method in ("sft", "dpo"):
        assert "--qlora / --no-qlora" in CliRunner().invoke(cli, ["train", method, "--help"]).output


def test_the_out_of_memory_hint_offers_qlora_only_on_a_gpu_run_that_was_not_qlora(monkeypatch):
    import torch

    from agent.train.loop import out_of_memory
    from agent.train.settings import TrainSettings

    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    plain = str(out_of_memory(oom, TrainSettings()))
    assert plain.endswith("--max-length 512, --rank 4, or --qlora (the base in 4 bits)")
    assert "--qlora" not in str(out_of_memory(oom, TrainSettings(qlora=True)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert str(out_of_memory(oom, TrainSettings())).endswith("--max-length 512, or --rank 4")


def test_the_card_and_record_say_whether_the_base_was_quantised(tmp_path):
    from agent.train import card

    plain = card.TrainingRecord(name="a", method="sft", base={"name": "b"}, dataset={}, hyperparameters={"qlora": False},
                                steps=1, losses=(1.0,), seconds=1.0, tokens_per_second=1.0, files={})
    assert "- QLoRA: no (the LoRA was trained on the unquantised base)" in card.card_text(plain, None, None)
    q = {"method": "qlora", "bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16",
         "bitsandbytes": "0.45.0"}
    quantised = card.TrainingRecord(**{**plain.__dict__, "hyperparameters": {"qlora": True}, "quantization": q})
    text = card.card_text(quantised, None, None)
    assert "- QLoRA: yes: the base loaded in 4-bit nf4 (double quantisation on, compute bfloat16" in text
    card.write_record(tmp_path, quantised)
    assert card.read_record(tmp_path) == quantised
    old = json.loads((tmp_path / card.RECORD_FILE).read_text(encoding="utf-8"))
    del old["quantization"]  # a record written before QLoRA existed still reads
    (tmp_path / card.RECORD_FILE).write_text(json.dumps(old), encoding="utf-8")
    assert card.read_record(tmp_path).quantization == {}


def test_a_plain_run_records_qlora_false(tmp_path, capsys, tiny_base):  # noqa: F811
    code, err = _main(capsys, "--config", str(train_config(tmp_path)), "train", "sft", "--dataset",
                      str(_dataset(tmp_path / "ds")), "--out", "plain", "--base", str(tiny_base), "--steps", "1",
                      "--batch-size", "2", "--threads", "1")
    assert code == 0, err[-2000:]
    out = tmp_path / "models" / "adapters" / "plain"
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["hyperparameters"]["qlora"] is False and record["quantization"] == {}
    assert "- QLoRA: no" in (out / "README.md").read_text(encoding="utf-8")
    assert "quantised to 4-bit" not in err
