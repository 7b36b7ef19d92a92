"""Telemetry codec version 2 (varentropy and the adaptive sampler's action per token), and that
version-1 blobs written by earlier releases still decode, directly and from a real log file."""

from __future__ import annotations

import sqlite3
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agent.llm.base import TokenStep, TopAlternative
from agent.llm.sampler import ADAPTIVE_ACTIONS
from agent.log import DialogueLog
from agent.log.codec import ACTION_CODES, CODEC_VERSION, CodecError, decode_steps, encode_steps
from tests.test_log import make_reply

PIECES = ["При", "вет", ",", " мир", "!", " 🙂", "\ud83d", "ё"]
ACTIONS = (None, "argmax", "sample", "explore", "pause")


def make_steps(n: int = 11) -> list[TokenStep]:
    return [
        TokenStep(
            index=i,
            token_id=40_000 + 3 * i,
            text=PIECES[i % len(PIECES)],
            logprob=None if i == 2 else -0.31 * i,
            entropy=None if i == 3 else 0.25 + i / 7,
            top=tuple(TopAlternative(900 + k, f"alt{k}", -0.5 * (k + 1)) for k in range(i % 3)),
            accepted_draft=(None, True, False)[i % 3],
            varentropy=None if i % 4 == 1 else 0.125 * i * i,
            action=ACTIONS[i % len(ACTIONS)],
        )
        for i in range(n)
    ]


def encode_v1(steps: Sequence[TokenStep]) -> bytes:
    """The version-1 encoder exactly as earlier releases wrote it (no varentropy, no action)."""
    def nan(values: list[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype="<f4")

    alts = [alt for step in steps for alt in step.top]
    pieces = [s.text.encode("utf-8", "surrogatepass") for s in steps]
    alt_texts = [a.text.encode("utf-8", "surrogatepass") for a in alts]
    arrays = [
        np.array([s.index for s in steps], dtype="<i4"),
        np.array([s.token_id for s in steps], dtype="<i4"),
        nan([s.logprob for s in steps]),
        nan([s.entropy for s in steps]),
        np.array([-1 if s.accepted_draft is None else int(s.accepted_draft) for s in steps], dtype="<i1"),
        np.array([len(s.top) for s in steps], dtype="<u2"),
        np.array([len(p) for p in pieces], dtype="<u4"),
        np.array([a.token_id for a in alts], dtype="<i4"),
        np.array([a.logprob for a in alts], dtype="<f4"),
        np.array([len(t) for t in alt_texts], dtype="<u4"),
    ]
    piece_bytes, alt_bytes = b"".join(pieces), b"".join(alt_texts)
    header = struct.pack("<IIII", len(steps), len(alts), len(piece_bytes), len(alt_bytes))
    return bytes([1]) + zlib.compress(b"".join([header, *(a.tobytes() for a in arrays), piece_bytes, alt_bytes]), 6)


def close(a: float | None, b: float | None) -> bool:
    return (a is None) == (b is None) and (a is None or a == pytest.approx(b, rel=1e-6, abs=1e-7))


def assert_same(got: list[TokenStep], want: list[TokenStep], *, v1: bool = False) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.index, g.token_id, g.text, g.accepted_draft) == (w.index, w.token_id, w.text, w.accepted_draft)
        assert close(g.logprob, w.logprob) and close(g.entropy, w.entropy)
        assert [(t.token_id, t.text) for t in g.top] == [(t.token_id, t.text) for t in w.top]
        if v1:
            assert g.varentropy is None and g.action is None
        else:
            assert close(g.varentropy, w.varentropy) and g.action == w.action


def test_v2_round_trip_keeps_varentropy_and_action() -> None:
    steps = make_steps()
    blob = encode_steps(steps)
    assert blob[0] == CODEC_VERSION == 2
    decoded = decode_steps(blob)
    assert_same(decoded, steps)
    assert {s.action for s in decoded} == set(ACTIONS)
    assert any(s.varentropy is None for s in decoded) and any(s.varentropy for s in decoded)


def test_v1_blob_still_decodes_with_no_varentropy_or_action() -> None:
    steps = make_steps()
    assert_same(decode_steps(encode_v1(steps)), steps, v1=True)
    assert decode_steps(encode_v1([])) == []


def test_every_adaptive_action_has_a_code() -> None:
    assert set(ADAPTIVE_ACTIONS) <= set(ACTION_CODES[1:])
    assert ACTION_CODES[0] is None


def test_an_action_without_a_code_is_stored_as_none_not_lost() -> None:
    step = TokenStep(0, 5, "x", -0.1, 0.2, varentropy=0.3, action="made-up")
    (decoded,) = decode_steps(encode_steps([step]))
    assert decoded.action is None and decoded.varentropy == pytest.approx(0.3)


@pytest.mark.parametrize("version", [0, 3, 255])
def test_unknown_version_is_refused(version: int) -> None:
    blob = encode_steps(make_steps())
    with pytest.raises(CodecError, match=f"version {version} is unknown"):
        decode_steps(bytes([version]) + blob[1:])


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 2],
    lambda b: b[:1] + b"garbage" * 5,
    lambda b: bytes([1]) + b[1:],  # a v2 payload labelled v1: the sizes do not add up
])
def test_corrupt_blobs_are_refused(damage) -> None:
    with pytest.raises(CodecError):
        decode_steps(damage(encode_steps(make_steps())))


def test_unknown_action_code_is_refused() -> None:
    steps = make_steps(4)
    payload = bytearray(zlib.decompress(encode_steps(steps)[1:]))
    n = len(steps)
    action_offset = 16 + n * (4 + 4 + 4 + 4 + 4 + 1)  # header, index, token, logprob, entropy, varent, draft
    payload[action_offset] = 200
    with pytest.raises(CodecError, match="action"):
        decode_steps(bytes([2]) + zlib.compress(bytes(payload)))


def test_log_file_reads_old_and_new_telemetry_rows(tmp_path: Path) -> None:
    steps = make_steps()
    with DialogueLog(tmp_path / "dialogues.sqlite3", busy_timeout=0.5) as log:
        conversation = log.new_conversation(persona="assistant")
        new = log.add_assistant_turn(make_reply(conversation, None, steps=steps))
        old = log.add_assistant_turn(make_reply(conversation, None, steps=steps))
        with sqlite3.connect(log.path) as raw:  # as a file written by an earlier release holds it
            raw.execute("UPDATE token_telemetry SET data = ? WHERE turn_id = ?", (encode_v1(steps), old))
        raw.close()
        assert_same(log.token_steps(new), steps)
        assert_same(log.token_steps(old), steps, v1=True)
