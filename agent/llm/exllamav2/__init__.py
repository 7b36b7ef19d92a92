"""The exllamav2 backend: EXL2-quantised models on CUDA GPUs, LoRA personas, speculative decoding.

``load`` assembles an :class:`~agent.llm.exllamav2.model.ExLlamaV2Model`; ``settings`` and
``sampler`` are importable without CUDA (the config and the tests use them). exllamav2 itself is
imported only when a model loads. Registered as ``exllamav2`` in :data:`agent.llm.BACKENDS`.
"""
