"""The tokenizers the lab compares: every GGUF vocabulary and Hugging Face tokenizer this machine has.

Only vocabularies are loaded, never weights: a GGUF through llama.cpp's ``vocab_only`` mode (about
a second for a 100 MB file), a Hugging Face folder through its ``tokenizer.json`` with the
``tokenizers`` library (Rust, batched). Both answer the same :class:`Vocabulary` protocol: token
counts for a batch of texts, and a text's pieces for display (stray UTF-8 bytes as ``<0xD0>``, as
``epistemic tokenize TEXT`` shows them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import ModelError

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig

log = logging.getLogger(__name__)


class Vocabulary(Protocol):
    """One model's tokenizer as the lab uses it (called from one thread at a time)."""

    name: str
    kind: str  # "gguf" | "hf"

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text, special tokens not added."""
        ...

    def pieces(self, text: str) -> list[str]:
        """The text's tokens as display pieces (stray UTF-8 bytes as ``<0xD0>``)."""
        ...

    def close(self) -> None:
        """Free the vocabulary."""
        ...


@dataclass(frozen=True)
class TokenizerSource:
    """A tokenizer found on this machine, not loaded yet."""

    name: str
    kind: str  # "gguf" | "hf"
    path: Path  # the .gguf file, or the folder holding tokenizer.json


def find_tokenizers(config: LoadedConfig) -> list[TokenizerSource]:
    """The installed starter LLMs, then every .gguf and tokenizer.json folder in the models dir."""
    from agent.llm.starter import starter_models
    from agent.models import models_dir

    found = [TokenizerSource(s.spec.name, "gguf", s.path) for s in starter_models()
             if s.spec.kind == "llm" and s.installed and s.path is not None and s.path.suffix == ".gguf"]
    return found + scan_tokenizers(models_dir(config))


def scan_tokenizers(folder: Path) -> list[TokenizerSource]:
    """``.gguf`` files (not vision projectors or LoRA adapters) and folders with ``tokenizer.json`` under ``folder``."""
    if not folder.is_dir():
        return []
    found = [TokenizerSource(str(p.relative_to(folder)), "gguf", p) for p in sorted(folder.rglob("*.gguf"))
             if "mmproj" not in p.name.lower() and not _is_adapter(p)]
    for hit in sorted(folder.rglob("tokenizer.json")):
        name = str(hit.parent.relative_to(folder)) if hit.parent != folder else folder.name
        found.append(TokenizerSource(name, "hf", hit.parent))
    return found


def _is_adapter(path: Path) -> bool:
    """A GGUF LoRA adapter (no vocabulary of its own); an unreadable file is not, so it gets reported."""
    from agent.llm.llamacpp.gguf import read_metadata

    try:
        return read_metadata(path).get("general.type") == "adapter"
    except ModelError:
        return False


def load_vocabulary(source: TokenizerSource) -> Vocabulary:
    """The source's vocabulary; ModelError (one line naming the file) when it cannot be read."""
    if source.kind == "gguf":
        return GgufVocabulary(source)
    return HfVocabulary(source)


class GgufVocabulary:
    """A GGUF file's vocabulary in llama.cpp (``vocab_only``: no weights are loaded).

    Called from one thread at a time (the lab's); nothing is shared, so no lock.
    """

    def __init__(self, source: TokenizerSource) -> None:
        from agent.llm.llamacpp.gguf import read_metadata

        self.name, self.kind, self.path = source.name, "gguf", source.path
        meta = read_metadata(source.path)  # a corrupt header is refused before llama.cpp sees it
        if meta.get("general.type") == "adapter":
            raise ModelError(f"{source.path}: a LoRA adapter, not a model: it has no vocabulary")
        self._llm = _open_vocab(source.path)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        tokenize = self._llm.tokenize
        return [len(tokenize(t.encode("utf-8"), add_bos=False, special=False)) for t in texts]

    def pieces(self, text: str) -> list[str]:
        from agent.llm.llamacpp.text import piece_label

        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return [piece_label(self._llm.detokenize([i], special=True)) for i in ids]

    def close(self) -> None:
        self._llm.close()


def _open_vocab(path: Path) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelError(f"llama-cpp-python is not installed ({exc}); pip install llama-cpp-python") from None
    from agent.llm.llamacpp.load import route_llama_logs, stderr_into_log

    route_llama_logs()
    try:
        with stderr_into_log():
            return Llama(model_path=str(path), vocab_only=True, n_ctx=64, n_threads=1, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(f"{path}: llama.cpp cannot read this model's vocabulary ({exc})") from None


class HfVocabulary:
    """A Hugging Face ``tokenizer.json`` in the ``tokenizers`` library (batched, in Rust).

    Called from one thread at a time (the lab's); the Rust tokenizer parallelises a batch itself.
    """

    def __init__(self, source: TokenizerSource) -> None:
        self.name, self.kind, self.path = source.name, "hf", source.path
        file = source.path / "tokenizer.json"
        try:
            text = file.read_text(encoding="utf-8")
            spec = json.loads(text)
            from tokenizers import Tokenizer

            self._tok = Tokenizer.from_str(text)
        except OSError as exc:
            raise ModelError(f"{file}: cannot read the tokenizer: {exc.strerror or exc}") from None
        except Exception as exc:  # json and the Rust parser raise several kinds; one line for the user
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise ModelError(f"{file}: not a readable Hugging Face tokenizer ({first})") from None
        self._byte_level = _uses_byte_level(spec)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tok.encode_batch_fast(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def pieces(self, text: str) -> list[str]:
        tokens = self._tok.encode(text, add_special_tokens=False).tokens
        return [self._label(t) for t in tokens]

    def _label(self, token: str) -> str:
        from agent.llm.llamacpp.text import piece_label

        if self._byte_level:
            table = _byte_decoder()
            if all(c in table for c in token):
                return piece_label(bytes(table[c] for c in token))
            return token
        if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            return token  # a SentencePiece byte-fallback token is already shown as its byte
        return token.replace("\u2581", " ")

    def close(self) -> None:
        del self._tok


def _uses_byte_level(spec: Any) -> bool:
    """Whether a tokenizer.json maps bytes to printable characters (GPT-2 style byte-level BPE)."""
    def mentions(part: Any) -> bool:
        if isinstance(part, dict):
            return part.get("type") == "ByteLevel" or any(mentions(v) for v in part.values())
        if isinstance(part, list):
            return any(mentions(v) for v in part)
        return False

    return isinstance(spec, dict) and (mentions(spec.get("decoder")) or mentions(spec.get("pre_tokenizer")))


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable character -> byte table (the inverse of its bytes_to_unicode)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


def select_tokenizers(found: list[TokenizerSource], wanted: Sequence[str]) -> list[TokenizerSource]:
    """``found``, or only the ``wanted`` ones: a name as listed, or a path to a .gguf file or a
    folder with tokenizer.json. UserError (exit 2) naming what is available otherwise."""
    if not wanted:
        return found
    by_name = {s.name: s for s in found}
    picked = []
    for item in wanted:
        path = Path(item).expanduser()
        if item in by_name:
            picked.append(by_name[item])
        elif path.is_file() and path.suffix == ".gguf":
            picked.append(TokenizerSource(path.name, "gguf", path))
        elif (path / "tokenizer.json").is_file():
            picked.append(TokenizerSource(path.name, "hf", path))
        else:
            names = ", ".join(by_name) or "none"
            raise ModelError(f"--model {item!r}: no such tokenizer (found: {names}; or give a .gguf file or a "
                             "folder with tokenizer.json)", exit_code=2)
    return picked
