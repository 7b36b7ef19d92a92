"""The llama.cpp backend (llama-cpp-python): GGUF models on CPU or GPU, the embedded default.

``model`` holds :class:`LlamaCppModel` and ``load``; the heavy ``llama_cpp`` import happens in
``load``. Registered as ``llama_cpp`` in :data:`agent.llm.BACKENDS`.
"""
