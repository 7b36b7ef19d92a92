"""Read a GGUF file's key/value header without loading the model.

llama.cpp needs the context size before it builds a context, and a corrupt or truncated file
should be refused with a clear message before the C library sees it. Only the header is read;
array values (the vocabulary, merges) are skipped and reported by their length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from agent.errors import ModelError

GGUF_MAGIC = b"GGUF"
_SCALARS: dict[int, str] = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 64 * 1024 * 1024  # a longer "string" means the file is not what it claims


@dataclass(frozen=True)
class GgufArray:
    """An array value that was skipped: its element type and length."""

    element_type: int
    length: int


class _Truncated(Exception):
    pass


def _read(f: IO[bytes], n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Truncated
    return data


def _scalar(f: IO[bytes], vtype: int) -> Any:
    fmt = _SCALARS[vtype]
    return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]


def _string(f: IO[bytes]) -> str:
    (length,) = struct.unpack("<Q", _read(f, 8))
    if length > _MAX_STRING:
        raise ValueError(f"string of {length} bytes")
    return _read(f, length).decode("utf-8", errors="replace")


def _skip_array(f: IO[bytes], etype: int, count: int) -> None:
    if etype in _SCALARS:
        f.seek(struct.calcsize(_SCALARS[etype]) * count, 1)
    elif etype == _STRING:
        for _ in range(count):
            (length,) = struct.unpack("<Q", _read(f, 8))
            f.seek(length, 1)
    elif etype == _ARRAY:
        for _ in range(count):
            inner, n = struct.unpack("<IQ", _read(f, 12))
            _skip_array(f, inner, n)
    else:
        raise ValueError(f"unknown array element type {etype}")


def _value(f: IO[bytes], vtype: int) -> Any:
    if vtype in _SCALARS:
        return _scalar(f, vtype)
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        etype, count = struct.unpack("<IQ", _read(f, 12))
        _skip_array(f, etype, count)
        return GgufArray(etype, count)
    raise ValueError(f"unknown value type {vtype}")


def read_metadata(path: Path) -> dict[str, Any]:
    """The header's key/value pairs; raise ModelError naming ``path`` when it is not valid GGUF."""
    try:
        with open(path, "rb") as f:
            if _read(f, 4) != GGUF_MAGIC:
                raise ValueError("no GGUF signature at the start of the file")
            (version,) = struct.unpack("<I", _read(f, 4))
            if version < 2:
                raise ValueError(f"GGUF version {version} is too old for llama.cpp")
            _, kv_count = struct.unpack("<QQ", _read(f, 16))
            meta: dict[str, Any] = {"GGUF.version": version}
            for _ in range(kv_count):
                key = _string(f)
                (vtype,) = struct.unpack("<I", _read(f, 4))
                meta[key] = _value(f, vtype)
            return meta
    except (_Truncated, ValueError, struct.error) as exc:
        reason = "file is truncated" if isinstance(exc, _Truncated) else str(exc)
        raise ModelError(
            f"{path}: not a valid GGUF model ({reason}); download it again or set [llm] model "
            "to another file (see `epistemic models list`)"
        ) from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file: {exc.strerror or exc}") from None


def context_length(meta: dict[str, Any]) -> int | None:
    """The context length the model was trained with (``<arch>.context_length``)."""
    arch = meta.get("general.architecture")
    value = meta.get(f"{arch}.context_length") if arch else None
    return int(value) if isinstance(value, int) else None


def model_name(meta: dict[str, Any], path: Path) -> str:
    """``general.name`` from the header, else the file's stem."""
    name = meta.get("general.name")
    return name.strip() if isinstance(name, str) and name.strip() else path.stem
