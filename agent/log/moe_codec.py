"""Mixture-of-experts routing of a reply in the dialogue log: the ``moe_routing`` table (migration 5).

One row per assistant turn whose model routed through experts with capture on (``[llm]
moe_routing``), written in the same transaction as the turn and its token telemetry. A blob is one
codec version byte followed by a zlib-compressed payload::

    header   <IIIII  n tokens, n layers, k (experts per token), n experts, flags (1 = normalized)
    layers   <u2[L]        model layer index of each column
    index    <i4[N]        TokenStep.index of each row
    experts  <u2[N*L*k]    chosen expert ids, best first
    weights  <f4[N*L*k]    their gate weights
    entropy  <f4[N*L]      router entropy, nats

The expert-usage histogram is not stored: :meth:`MoERouting.usage` counts it from ``experts``.
"""

from __future__ import annotations

import sqlite3
import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np

from agent.errors import LogError
from agent.llm.base import MoERouting

if TYPE_CHECKING:
    from agent.log.db import DialogueLog

CODEC_VERSION = 1
_HEADER = struct.Struct("<IIIII")
_NORMALIZED = 1


class MoECodecError(LogError):
    """A routing blob that cannot be decoded (truncated, corrupt, or from a newer codec)."""


def encode_routing(routing: MoERouting) -> bytes:
    """Pack ``routing`` into a compressed blob (layout in the module docstring)."""
    n, layers, k = len(routing.token_index), len(routing.layers), routing.top_k
    if routing.n_experts > 0xFFFF:
        raise ValueError(f"{routing.n_experts} experts do not fit the routing codec (at most 65535)")
    header = _HEADER.pack(n, layers, k, routing.n_experts, _NORMALIZED if routing.normalized else 0)
    parts = [
        np.asarray(routing.layers, dtype="<u2"), np.asarray(routing.token_index, dtype="<i4"),
        np.asarray(routing.experts, dtype="<u2").reshape(n * layers * k),
        np.asarray(routing.weights, dtype="<f4").reshape(n * layers * k),
        np.asarray(routing.entropy, dtype="<f4").reshape(n * layers),
    ]
    return bytes([CODEC_VERSION]) + zlib.compress(header + b"".join(p.tobytes() for p in parts), 6)


def decode_routing(blob: bytes) -> MoERouting:
    """Unpack a blob from :func:`encode_routing`; MoECodecError if it is damaged."""
    if not blob:
        raise MoECodecError("empty MoE routing blob")
    if blob[0] != CODEC_VERSION:
        raise MoECodecError(f"MoE routing codec version {blob[0]} is not supported (this build reads {CODEC_VERSION})")
    try:
        payload = zlib.decompress(blob[1:])
        n, layers, k, experts, flags = _HEADER.unpack_from(payload)
    except (zlib.error, struct.error) as exc:
        raise MoECodecError(f"MoE routing blob is corrupt ({exc})") from None
    offset = _HEADER.size
    arrays = []
    for dtype, count in (("<u2", layers), ("<i4", n), ("<u2", n * layers * k), ("<f4", n * layers * k), ("<f4", n * layers)):
        size = np.dtype(dtype).itemsize * count
        if offset + size > len(payload):
            raise MoECodecError("MoE routing blob is truncated")
        arrays.append(np.frombuffer(payload, dtype=dtype, count=count, offset=offset))
        offset += size
    if offset != len(payload):
        raise MoECodecError("MoE routing blob has trailing bytes")
    layer_ids, index, ids, weights, entropy = arrays
    return MoERouting(
        n_experts=experts, layers=tuple(int(i) for i in layer_ids), token_index=tuple(int(i) for i in index),
        experts=ids.astype(np.int32).reshape(n, layers, k), weights=weights.astype(np.float32).reshape(n, layers, k),
        entropy=entropy.astype(np.float32).reshape(n, layers), normalized=bool(flags & _NORMALIZED),
    )


def insert(conn: sqlite3.Connection, turn_id: int, routing: MoERouting) -> None:
    """Store a turn's routing (inside the caller's transaction)."""
    conn.execute("INSERT INTO moe_routing (turn_id, layers, experts, data) VALUES (?, ?, ?, ?)",
                 (turn_id, len(routing.layers), routing.n_experts, encode_routing(routing)))


def read_routing(log: DialogueLog, turn_id: int) -> MoERouting | None:
    """A turn's stored routing, None if it has none; MoECodecError if the row is damaged."""
    with log.snapshot("reading MoE routing") as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'moe_routing'").fetchone() is None:
            return None  # a log from before migration 5, opened read-only
        row = conn.execute("SELECT data FROM moe_routing WHERE turn_id = ?", (turn_id,)).fetchone()
    if row is None:
        return None
    try:
        return decode_routing(bytes(row[0]))
    except MoECodecError as exc:
        raise MoECodecError(f"turn {turn_id}: {exc}") from None
