"""Widgets of the Epistemic Engine TUI."""
