"""Closing PortAudio streams without hanging when their device (or sound server) has vanished."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 1.0


def close_stream(stream: Any, what: str, timeout: float = CLOSE_TIMEOUT_S) -> bool:
    """Abort and close ``stream``; give up after ``timeout`` seconds. True if it closed.

    PortAudio's abort can block forever once the device or sound server is gone (seen with the
    PulseAudio plugin after the daemon died), so the close runs in a daemon thread and a stream
    that does not close in time is abandoned rather than freezing the program.
    """

    def close() -> None:
        try:
            stream.abort()
            stream.close()
        except Exception as exc:  # a dead device may fail to close; nothing left to do
            log.debug("closing %s stream: %s", what, exc)

    closer = threading.Thread(target=close, name=f"close-{what}", daemon=True)
    closer.start()
    closer.join(timeout)
    if closer.is_alive():
        log.warning("the %s device did not close within %.1f s (it vanished?); abandoned it", what, timeout)
        return False
    return True
