"""The dialogue log: conversations and turns in SQLite with full provenance and token telemetry."""

from agent.log.db import DialogueLog, TelemetryError
from agent.log.migrations import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "DialogueLog", "TelemetryError"]
