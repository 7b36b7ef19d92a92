"""Prompts rendered with a model's own chat template equal transformers' ``apply_chat_template``.

transformers is the reference (a test-only dependency): the same template string, the same
special tokens, the same conversations, incl. a system prompt and Russian text.
"""

from __future__ import annotations

import pytest

from agent.errors import ModelError
from agent.llm.base import ChatMessage
from agent.llm.chat_template import render_chat_template
from tests.llm_fixtures import chat

transformers = pytest.importorskip("transformers", reason="transformers is the reference renderer (test dependency)")

CONVERSATIONS = {
    "user only": chat(("user", "Hello!")),
    "system + user": chat(("system", "You are terse."), ("user", "What is 2+2?")),
    "multi-turn": chat(("system", "Be kind."), ("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "Tell me a joke.")),
    "russian": chat(("system", "Отвечай по-русски."), ("user", "Что такое бессознательное?"),
                    ("assistant", "Это психическое содержание вне сознания."), ("user", "А «сознание»?")),
    "whitespace": chat(("user", "  leading and trailing  \n\n")),
}

LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{% if loop.first and system %}{{ '[INST] ' + system + '\n\n' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
)
GEMMA_LIKE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- set role = "model" if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}<end_of_turn>
{% endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}
"""
JSONY = (
    "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
    "{{ ns.n }}:{{ m | tojson }}\n{% endfor %}{% if add_generation_prompt %}>{% endif %}"
)
TEMPLATES = {"llama3": LLAMA3, "mistral": MISTRAL, "gemma-like": GEMMA_LIKE, "tojson+namespace": JSONY}


def _hf_tokenizer(template: str, bos: str, eos: str):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    vocab = {"<unk>": 0, bos: 1, eos: 2}
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")), bos_token=bos, eos_token=eos, unk_token="<unk>"
    )
    tok.chat_template = template
    return tok


def _dicts(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_the_models_own_template_renders_like_transformers(starter_model, name):
    special = starter_model.special_tokens()
    reference = _hf_tokenizer(starter_model.info.chat_template, special["bos_token"], special["eos_token"])
    messages = CONVERSATIONS[name]
    expected = reference.apply_chat_template(_dicts(messages), tokenize=False, add_generation_prompt=True)
    prompt = starter_model.render_prompt(messages)
    assert prompt.text == expected
    assert starter_model._llm.detokenize(list(prompt.token_ids), special=True).decode("utf-8") == expected


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("name", ["user only", "system + user", "multi-turn", "russian"])
def test_other_families_render_like_transformers(template, name):
    text = TEMPLATES[template]
    messages = _dicts(CONVERSATIONS[name])
    reference = _hf_tokenizer(text, "<s>", "</s>")
    expected = reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ours = render_chat_template(text, messages, add_generation_prompt=True, special_tokens={"bos_token": "<s>", "eos_token": "</s>"})
    assert ours == expected


def test_a_template_that_refuses_the_conversation_is_a_model_error():
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(ModelError, match="alternate"):
        render_chat_template(MISTRAL, bad, special_tokens={"bos_token": "<s>", "eos_token": "</s>"})


def test_a_gguf_without_template_cannot_chat(starter_model):
    from dataclasses import replace

    from agent.llm.llamacpp.model import LlamaCppModel

    bare = LlamaCppModel.__new__(LlamaCppModel)
    bare.__dict__.update(starter_model.__dict__)
    bare.info = replace(starter_model.info, chat_template=None)
    with pytest.raises(ModelError, match="no chat template"):
        bare.render_prompt(chat(("user", "hi")))
    assert bare.count_tokens("hello world") == starter_model.count_tokens("hello world")


def test_a_template_that_emits_bos_gets_no_second_bos(starter_model):
    from dataclasses import replace

    from agent.llm.llamacpp.model import LlamaCppModel

    model = LlamaCppModel.__new__(LlamaCppModel)
    model.__dict__.update(starter_model.__dict__)
    model.info = replace(starter_model.info, chat_template=LLAMA3)
    bos = starter_model._llm.token_bos()
    prompt = model.render_prompt(chat(("user", "hi")))
    assert prompt.token_ids[0] == bos and prompt.token_ids[1] != bos
