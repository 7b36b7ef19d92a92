"""Fixtures for dataset export tests: real dialogue logs written through DialogueLog, and a tiny
fabricated chat model (random 2-layer Llama, hidden 64, byte-level BPE tokenizer trained here
with a chat template) for a few TRL trainer steps on CPU.

Import what a module needs: ``from tests.harvest_fixtures import tiny_chat_model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.log import DialogueLog
from agent.records import AssistantTurnRecord, UserTurnRecord

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }}<|end|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def reply(conversation_id: int, parent_id: int | None, text: str, **fields: Any) -> AssistantTurnRecord:
    """An assistant turn record with plausible provenance; ``fields`` override any of it."""
    values: dict[str, Any] = dict(
        conversation_id=conversation_id, parent_id=parent_id, text=text, reasoning="", raw_text=text,
        prompt_text=f"<prompt for {text[:20]}>", prompt_tokens=12, backend="llama_cpp", model_id="tiny-model",
        model_path="/models/tiny.gguf", model_hash="abc123", persona="assistant",
        adapters=[{"id": "calm", "path": "/a/calm", "scale": 0.5, "hash": "h1"}],
        sampler={"temperature": 0.7, "top_p": 0.9, "seed": 1}, timings={"ttft": 0.1}, stop_reason="stop",
        interrupted=False,
    )
    values.update(fields)
    return AssistantTurnRecord(**values)


def exchange(log: DialogueLog, conv: int, question: str, answer: str, *, user: dict[str, Any] | None = None,
             **fields: Any) -> tuple[int, int]:
    """Log a user turn and its reply: (user turn id, reply id)."""
    user_id = log.add_user_turn(UserTurnRecord(conv, question, **(user or {})))
    return user_id, log.add_assistant_turn(reply(conv, user_id, answer, **fields))


def conversation(log: DialogueLog, pairs: list[tuple[str, str]], persona: str = "assistant") -> tuple[int, list[int]]:
    """A conversation of ``pairs``: (its id, the reply ids)."""
    conv = log.new_conversation(persona=persona, title=pairs[0][0][:30])
    return conv, [exchange(log, conv, q, a)[1] for q, a in pairs]


def varied_log(path: Path, conversations: int = 30) -> DialogueLog:
    """A log of distinct two-exchange conversations (open for writing; close it)."""
    log = DialogueLog(path)
    for i in range(conversations):
        conversation(log, [(f"Question {i} about topic {i * 7 % 13}?", f"Answer {i}: the topic is number {i * 7 % 13}."),
                           (f"And why {i}?", f"Because {i} is {'even' if i % 2 == 0 else 'odd'}, friend {i}.")])
    return log


def write_wav(path: Path, seconds: float, rate: int = 16_000, channels: int = 1) -> Path:
    """A short tone as a WAV file."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a random tiny Llama and a byte-level BPE tokenizer that has a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-chat")
    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = ["Question about topic answer because even odd friend", "Привет, как дела? Хорошо.", "hello world"] * 20
    core.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>", eos_token="<|end|>",
                                        bos_token="<|system|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
