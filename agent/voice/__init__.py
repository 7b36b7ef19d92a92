"""The voice loop: microphone -> VAD -> Whisper -> conversation engine -> Piper -> speaker.

Ties the ``audio`` building blocks to :class:`agent.engine.ConversationEngine`. Headless: the CLI,
the TUI and the tests consume the same :mod:`agent.voice.events` through a plain callback.
"""
