"""Small JSON requests to a server's non-OpenAI endpoints (tokenize, detokenize), with the stdlib only."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from agent.errors import one_line
from agent.llm.openai.errors import ServerRefused, ServerUnreachable

NOT_OFFERED = frozenset({400, 404, 405, 422, 500, 501})  # answers meaning "no such endpoint / body shape"


@dataclass(frozen=True)
class Endpoint:
    """Where the server is: ``root`` is base_url without its ``/v1``. Immutable; any thread."""

    base_url: str
    api_key_env: str
    timeout_s: float

    @property
    def root(self) -> str:
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST ``body`` to ``root + path``; the JSON answer, or None if the server does not offer it."""
        request = urllib.request.Request(
            self.root + path, data=json.dumps(body).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", **self._auth()},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 (http(s) only, checked in settings)
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code in NOT_OFFERED:
                return None
            raise ServerRefused(f"openai backend: {self.base_url} refused {path} ({exc.code} {one_line(str(exc.reason))})", status=exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServerUnreachable(f"openai backend: cannot reach {self.root + path} ({one_line(str(exc))}); start the server or fix [openai] base_url") from None
        return answer if isinstance(answer, dict) else None

    def _auth(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}
