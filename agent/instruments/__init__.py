"""Instruments of thinking: views over the logged per-token telemetry (entropy curves, tokenizers)."""
