"""Closing PortAudio streams without hanging when their device (or sound server) has vanished."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 1.0


def _bounded(action: Any, what: str, verb: str, timeout: float) -> bool:
    """Run ``action`` in a daemon thread; True if it returned (or raised) within ``timeout``."""

    def run() -> None:
        try:
            action()
        except Exception as exc:  # a dead device may fail to abort or close; nothing left to do
            log.debug("%s %s stream: %s", verb, what, exc)

    worker = threading.Thread(target=run, name=f"{verb}-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log.warning("the %s device did not answer %s within %.1f s (it vanished?); abandoned it",
                    what, verb, timeout)
        return False
    return True


def abort_stream(stream: Any, what: str, timeout: float = CLOSE_TIMEOUT_S) -> bool:
    """Abort ``stream`` (drop its buffer) without closing it; give up after ``timeout`` seconds.

    True if the abort returned in time; a stream that did not is left to its daemon thread.
    """
    return _bounded(stream.abort, what, "aborting", timeout)


def close_stream(stream: Any, what: str, timeout: float = CLOSE_TIMEOUT_S) -> bool:
    """Abort and close ``stream``; give up after ``timeout`` seconds. True if it closed.

    PortAudio's abort can block forever once the device or sound server is gone (seen with the
    PulseAudio plugin after the daemon died), so the close runs in a daemon thread and a stream
    that does not close in time is abandoned rather than freezing the program.
    """

    def close() -> None:
        stream.abort()
        stream.close()

    return _bounded(close, what, "closing", timeout)
