"""Read a document (Markdown, plain text, HTML, PDF; a file or a URL) into text ready to chunk.

Every failure is one :class:`KnowledgeError` line naming the source: nothing of a document that
cannot be read whole reaches the index.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from agent.knowledge.errors import KnowledgeError, require
from agent.knowledge.fetch import fetch_url, is_url

KINDS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text", ".rst": "text",
         ".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf"}
SUPPORTED = ", ".join(sorted(KINDS))


@dataclass(frozen=True)
class Document:
    """A document's text, where it came from, its kind and the hash of its raw bytes."""

    source: str
    kind: str
    title: str
    text: str
    content_hash: str


def content_hash(data: bytes) -> str:
    """SHA-256 of a document's raw bytes (an unchanged file is not indexed again)."""
    return hashlib.sha256(data).hexdigest()


def source_key(ref: str) -> str:
    """How a document is known in the store: its URL, or its absolute resolved path."""
    return ref if is_url(ref) else str(Path(ref).expanduser().resolve())


def read_bytes(ref: str, timeout: float) -> tuple[bytes, str]:
    """The raw bytes of a file or URL and its kind (markdown, text, html, pdf)."""
    if is_url(ref):
        fetched = fetch_url(ref, timeout)
        return fetched.data, fetched.kind
    path = Path(ref).expanduser()
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise KnowledgeError(f"{ref}: unsupported file type {path.suffix or '(none)'!r}; supported: {SUPPORTED}")
    try:
        return path.read_bytes(), kind
    except OSError as exc:
        raise KnowledgeError(f"{ref}: cannot read: {exc.strerror or exc}") from None


def parse(source: str, data: bytes, kind: str) -> Document:
    """The document's text from its raw bytes; KnowledgeError if there is no text to index."""
    if kind == "pdf":
        title, text = _pdf_text(source, data)
    elif kind == "html":
        title, text = _html_text(source, data)
    else:
        text = _decode(source, data)
        title = _first_heading(text) if kind == "markdown" else ""
    if not text.strip():
        raise KnowledgeError(f"{source}: no text to index")
    name = source.rstrip("/").rsplit("/", 1)[-1]
    return Document(source, kind, title or name, text, content_hash(data))


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KnowledgeError(f"{source}: not UTF-8 text") from None


def _first_heading(text: str) -> str:
    match = re.search(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def _pdf_text(source: str, data: bytes) -> tuple[str, str]:
    """Each page's text under a ``# page N`` heading, so chunks say where they are."""
    pypdf = require("pypdf", "reading PDF files")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception as exc:  # pypdf raises many types for a damaged file
        raise KnowledgeError(f"{source}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(f"# page {n}\n\n{page.strip()}" for n, page in enumerate(pages, 1) if page.strip())
    return title, text


def _html_text(source: str, data: bytes) -> tuple[str, str]:
    """The page's main text as Markdown (trafilatura: headings kept, menus and footers left out)."""
    trafilatura = require("trafilatura", "reading HTML pages")
    html = data.decode("utf-8", errors="replace")
    text = trafilatura.extract(html, output_format="markdown", include_formatting=True,
                               include_comments=False, favor_recall=True) or ""
    meta = trafilatura.extract_metadata(html)
    return (meta.title if meta is not None and meta.title else ""), text
