"""The OpenAI-compatible HTTP backend: a model served elsewhere (vLLM, TabbyAPI, llama.cpp's server).

Nothing here imports the ``openai`` SDK at import time; ``model.load`` does (the ``remote`` extra).
"""
