"""Epistemic Engine: a local voice agent that shows and records what shapes its model's thinking."""

__version__ = "0.1.0"
