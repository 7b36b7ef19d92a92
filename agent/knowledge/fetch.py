"""Fetch a document from a URL with the standard library, with a timeout and one-line errors."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from agent.knowledge.errors import KnowledgeError

MAX_BYTES = 50 * 1024 * 1024
USER_AGENT = "epistemic-engine (knowledge add)"


@dataclass(frozen=True)
class Fetched:
    """The body of a URL and the kind of document its content type says it is."""

    url: str
    data: bytes
    kind: str


def is_url(ref: str) -> bool:
    """True for http:// and https:// references."""
    return ref.startswith(("http://", "https://"))


def fetch_url(url: str, timeout: float) -> Fetched:
    """GET ``url`` (redirects followed); KnowledgeError on any network or HTTP failure."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            data = response.read(MAX_BYTES + 1)
            ctype = response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raise KnowledgeError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise KnowledgeError(f"{url}: unreachable ({_reason(exc.reason)})") from None
    except TimeoutError:
        raise KnowledgeError(f"{url}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise KnowledgeError(f"{url}: unreachable ({exc})") from None
    if len(data) > MAX_BYTES:
        raise KnowledgeError(f"{url}: larger than {MAX_BYTES // (1024 * 1024)} MB; download it and add the file")
    return Fetched(url, data, _kind(url, ctype))


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def _kind(url: str, content_type: str) -> str:
    if content_type == "application/pdf" or url.lower().endswith(".pdf"):
        return "pdf"
    if content_type in ("text/markdown", "text/x-markdown") or url.lower().endswith((".md", ".markdown")):
        return "markdown"
    if content_type == "text/plain":
        return "text"
    return "html"
