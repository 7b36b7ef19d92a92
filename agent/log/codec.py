"""Compact binary encoding of per-token telemetry (a reply's list of TokenSteps).

A blob is one codec version byte followed by a zlib-compressed payload. Version 2 (written now)::

    header   <IIII   n steps, m top alternatives in all, piece bytes, alternative bytes
    index    <i4[n]  TokenStep.index
    token    <i4[n]  TokenStep.token_id
    logprob  <f4[n]  NaN where None
    entropy  <f4[n]  NaN where None
    varent   <f4[n]  varentropy, NaN where None
    draft    <i1[n]  accepted_draft: -1 None, 0 False, 1 True
    action   <u1[n]  adaptive sampler action, a code into ACTION_CODES (0 = None)
    ntop     <u2[n]  how many alternatives belong to each step
    plen     <u4[n]  UTF-8 byte length of each step's text
    alt_tok  <i4[m]
    alt_lp   <f4[m]
    alt_len  <u4[m]
    pieces   bytes   every step's text, UTF-8, concatenated
    alt_text bytes   every alternative's text, UTF-8, concatenated

Version 1 (older logs) is the same without ``varent`` and ``action``; it still decodes, with
``varentropy`` and ``action`` None. ``ACTION_CODES`` only ever grows, so old codes keep their meaning.

Log-probabilities and entropies are stored as float32 (about 7 significant digits), which is far
finer than any analysis needs and halves the size. Text is UTF-8 with ``surrogatepass`` so a piece
that is half of a multibyte character (a lone surrogate) survives the round trip.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from agent.llm.base import TokenStep, TopAlternative

CODEC_VERSION = 2
READABLE_VERSIONS = (1, 2)
_HEADER = struct.Struct("<IIII")
_STEP_ARRAYS = {
    1: (("index", "<i4"), ("token", "<i4"), ("logprob", "<f4"), ("entropy", "<f4"),
        ("draft", "<i1"), ("ntop", "<u2"), ("plen", "<u4")),
    2: (("index", "<i4"), ("token", "<i4"), ("logprob", "<f4"), ("entropy", "<f4"), ("varent", "<f4"),
        ("draft", "<i1"), ("action", "<u1"), ("ntop", "<u2"), ("plen", "<u4")),
}
ACTION_CODES: tuple[str | None, ...] = (None, "argmax", "sample", "explore", "pause")  # append only
_ACTION_CODE = {name: code for code, name in enumerate(ACTION_CODES)}
_ALT_ARRAYS = (("alt_tok", "<i4"), ("alt_lp", "<f4"), ("alt_len", "<u4"))


class CodecError(ValueError):
    """A telemetry blob that cannot be decoded (truncated, corrupt, or from a newer codec)."""


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _nan_if_none(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype="<f4")


def _none_if_nan(value: np.floating) -> float | None:
    return None if np.isnan(value) else float(value)


def _action_code(action: str | None) -> int:
    """The action's code; one without a code is stored as None rather than failing the turn's save
    (every action the samplers produce has one: tests/test_codec_v2.py checks it)."""
    return _ACTION_CODE.get(action, 0)


def encode_steps(steps: Sequence[TokenStep]) -> bytes:
    """Pack ``steps`` into a compressed blob (see the module docstring for the layout)."""
    alts = [alt for step in steps for alt in step.top]
    pieces = [_utf8(step.text) for step in steps]
    alt_texts = [_utf8(alt.text) for alt in alts]
    arrays = [
        np.array([s.index for s in steps], dtype="<i4"),
        np.array([s.token_id for s in steps], dtype="<i4"),
        _nan_if_none([s.logprob for s in steps]),
        _nan_if_none([s.entropy for s in steps]),
        _nan_if_none([s.varentropy for s in steps]),
        np.array([-1 if s.accepted_draft is None else int(s.accepted_draft) for s in steps], dtype="<i1"),
        np.array([_action_code(s.action) for s in steps], dtype="<u1"),
        np.array([len(s.top) for s in steps], dtype="<u2"),
        np.array([len(p) for p in pieces], dtype="<u4"),
        np.array([a.token_id for a in alts], dtype="<i4"),
        np.array([a.logprob for a in alts], dtype="<f4"),
        np.array([len(t) for t in alt_texts], dtype="<u4"),
    ]
    piece_bytes, alt_bytes = b"".join(pieces), b"".join(alt_texts)
    header = _HEADER.pack(len(steps), len(alts), len(piece_bytes), len(alt_bytes))
    payload = b"".join([header, *(a.tobytes() for a in arrays), piece_bytes, alt_bytes])
    return bytes([CODEC_VERSION]) + zlib.compress(payload, 6)


class _Reader:
    """Reads typed arrays off the front of a payload, checking that each one is complete."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.pos = _HEADER.size

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.payload):
            raise CodecError("telemetry blob is truncated")
        out = np.frombuffer(self.payload, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out

    def raw(self, size: int) -> bytes:
        if self.pos + size > len(self.payload):
            raise CodecError("telemetry blob is truncated")
        out = self.payload[self.pos : self.pos + size]
        self.pos += size
        return out


def _split(blob: bytes, lengths: np.ndarray) -> list[str]:
    if int(lengths.sum()) != len(blob):
        raise CodecError("telemetry text lengths do not add up")
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    try:
        return [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "surrogatepass") for i in range(len(lengths))]
    except UnicodeDecodeError as exc:
        raise CodecError(f"telemetry text is not UTF-8: {exc.reason}") from None


def _decompress(blob: bytes) -> tuple[int, bytes]:
    if not blob:
        raise CodecError("telemetry blob is empty")
    version = blob[0]
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise CodecError(f"telemetry codec version {version} is unknown (this program reads {readable})")
    try:
        payload = zlib.decompress(blob[1:])
    except zlib.error as exc:
        raise CodecError(f"telemetry blob does not decompress: {exc}") from None
    if len(payload) < _HEADER.size:
        raise CodecError("telemetry blob is truncated")
    return version, payload


def decode_steps(blob: bytes) -> list[TokenStep]:
    """Unpack a blob made by :func:`encode_steps` (this or an older codec version); raise
    CodecError if it is damaged."""
    version, payload = _decompress(bytes(blob))
    n, m, piece_len, alt_len = _HEADER.unpack_from(payload)
    reader = _Reader(payload)
    cols = {name: reader.array(dtype, n) for name, dtype in _STEP_ARRAYS[version]}
    if "action" in cols and int(cols["action"].max(initial=0)) >= len(ACTION_CODES):
        raise CodecError("telemetry blob has an unknown sampler action code")
    alt_cols = {name: reader.array(dtype, m) for name, dtype in _ALT_ARRAYS}
    pieces = _split(reader.raw(piece_len), cols["plen"])
    alt_texts = _split(reader.raw(alt_len), alt_cols["alt_len"])
    if reader.pos != len(payload) or int(cols["ntop"].sum()) != m:
        raise CodecError("telemetry blob has inconsistent sizes")
    alts = [TopAlternative(int(t), text, float(lp))
            for t, text, lp in zip(alt_cols["alt_tok"], alt_texts, alt_cols["alt_lp"], strict=True)]
    return _steps(cols, pieces, alts)


def _steps(cols: dict[str, np.ndarray], pieces: list[str], alts: list[TopAlternative]) -> list[TokenStep]:
    steps, start = [], 0
    varent, action = cols.get("varent"), cols.get("action")
    for i, text in enumerate(pieces):
        count = int(cols["ntop"][i])
        draft = int(cols["draft"][i])
        steps.append(TokenStep(
            index=int(cols["index"][i]),
            token_id=int(cols["token"][i]),
            text=text,
            logprob=_none_if_nan(cols["logprob"][i]),
            entropy=_none_if_nan(cols["entropy"][i]),
            top=tuple(alts[start : start + count]),
            accepted_draft=None if draft < 0 else bool(draft),
            varentropy=None if varent is None else _none_if_nan(varent[i]),
            action=None if action is None else ACTION_CODES[int(action[i])],
        ))
        start += count
    return steps
