"""Screens of the Epistemic Engine TUI."""
