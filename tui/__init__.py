"""The Textual terminal UI: read the conversation and steer the model's thinking.

Build the app with :func:`tui.app.make_app`; this package never imports a model library
(torch, exllamav2, llama_cpp): the model is loaded through :mod:`agent.runtime`.
"""
