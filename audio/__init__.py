"""Audio: capture, VAD, speech-to-text, text-to-speech and playback. Knows nothing of agent/ or tui/."""
