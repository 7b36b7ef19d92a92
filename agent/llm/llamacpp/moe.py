"""Mixture-of-experts routing telemetry for the llama.cpp backend (``[llm] moe_routing``).

llama.cpp names the router's graph tensors ``ffn_moe_logits-<layer>`` (router logits,
``[n_expert, n_tokens]``), ``ffn_moe_topk-<layer>`` (the chosen expert ids, a view of the argsort,
``[k, n_tokens]``), ``ffn_moe_weights-<layer>`` (their gate probabilities) and, where the model
renormalises them, ``ffn_moe_weights_norm-<layer>``. A context's eval callback (``cb_eval``) is
asked about every graph node before it is computed (``ask=True``: return True for the ones we
want) and called again once that node's data exists (``ask=False``); we copy only the last token's
row per layer (a few dozen bytes) with ``ggml_backend_tensor_get``, which reads CPU and GPU buffers
alike. Each requested tensor splits the graph there, so only one is requested per layer (see
:class:`RoutingCapture`). The row of a pass is the routing of the token sampled from its logits.

How the callback gets in: ``llama_cpp.Llama()`` does not take one, and its context is created
inside ``__init__``. :func:`attach` therefore frees the context ``Llama`` made and creates a new one
from the very same ``Llama.context_params`` with ``cb_eval`` set, then puts it in ``Llama._ctx``.
Every ``Llama`` method reaches the context through ``self._ctx`` at call time (the backend already
relies on that in its token loop), the model, batch, buffers and sizes stay as they were, and the
new context registers itself with the model so it is freed before the model, as the old one was.
Freeing first means the KV cache is never allocated twice. The cost: two private attributes
(``_ctx``, ``_model``) and ``llama_cpp._internals.LlamaContext``, all present since 0.3.

Cost: with a callback installed llama.cpp calls it for every graph node (about 0.5 µs each, most
of the cost; other nodes are turned away after one 8-byte read of their name) and computes the
graph in pieces between requested tensors. Together about 1 ms per token on a CPU here:
bench/bench_moe.py measured 3.4-6 % of tok/s on a model with real layer widths, more on toy
ones, over the 3 % telemetry budget. So capture is off by default, attached only when asked for
and only to MoE models; dense models and ``moe_routing = false`` run without any callback.

Threads: the callback runs on the thread that calls ``llama_decode``, i.e. the generation thread
holding :class:`~agent.llm.llamacpp.model.LlamaCppModel`'s lock, and so do ``begin``/``take``/
``finish``; nothing else touches a :class:`RoutingCapture`.
"""

from __future__ import annotations

import ctypes
import logging
import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.errors import ModelError
from agent.llm.base import MoERouting

log = logging.getLogger(__name__)

GGML_TYPE_F32, GGML_TYPE_I32 = 0, 26
_PREFIX = b"ffn_moe_"
_PREFIX_U64 = int.from_bytes(_PREFIX, sys.byteorder)  # the first 8 bytes of a name, compared as one integer
_LOGITS, _TOPK, _WEIGHTS, _NORM = 0, 1, 2, 3
_WANTED = {b"ffn_moe_logits": _LOGITS, b"ffn_moe_topk": _TOPK, b"ffn_moe_weights": _WEIGHTS, b"ffn_moe_weights_norm": _NORM}


# the first fields of ``struct ggml_tensor``: type, (padding), buffer, ne[4], nb[4]; unchanged since 2023
_HEAD = struct.Struct("=i4xQ4q4Q")
# src[0], src[1]: after op (4 bytes), op_params (64) and flags (4); checked by name where used
_SOURCES_AT = _HEAD.size + 4 + 64 + 4
_SOURCES = struct.Struct("=QQ")


@dataclass(frozen=True)
class MoEShape:
    """What the GGUF says about the model's experts."""

    n_layers: int
    n_experts: int
    n_used: int


def moe_shape(meta: dict[str, Any]) -> MoEShape | None:
    """The model's experts from its GGUF metadata; None for a dense model."""
    arch = meta.get("general.architecture")
    experts, used, layers = (meta.get(f"{arch}.{key}") for key in ("expert_count", "expert_used_count", "block_count"))
    if not all(isinstance(v, int) and v > 0 for v in (experts, used, layers)):
        return None
    assert isinstance(experts, int) and isinstance(used, int) and isinstance(layers, int)
    return MoEShape(n_layers=layers, n_experts=experts, n_used=min(used, experts)) if experts > 1 else None


class _Ggml:
    """The two ggml functions the callback needs, resolved through libllama's handle (which finds
    them in libggml-base, its dependency)."""

    def __init__(self) -> None:
        import llama_cpp.llama_cpp as lib

        handle = lib._lib
        self.get_name = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p)(("ggml_get_name", handle))
        self.name_address = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(("ggml_get_name", handle))
        self.tensor_get = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)(
            ("ggml_backend_tensor_get", handle))


class RoutingCapture:
    """Collects the router's choices through llama.cpp's eval callback (see the module docstring).

    Called only from the generation thread (callback included); no lock. The ``_router`` / ``_topk``
    / ``_weights`` buffers hold the last token's routing of the most recent forward pass per layer;
    ``take`` copies them per token.

    One graph split per layer: only ``ffn_moe_weights-<layer>`` (the chosen experts' probabilities,
    a ``get_rows`` of the router probabilities by the top-k ids) is requested; its two sources, the
    probabilities and ``ffn_moe_topk``, are still intact when it has been computed (it consumes
    them), so they are read through its ``src`` pointers, checked by name. Renormalisation (the
    graph has ``ffn_moe_weights_norm``) is redone here: ``w / sum(w)``, as llama.cpp does. Should the
    names not match (another ggml layout), capture falls back to requesting logits, top-k and
    weights separately (three splits per layer).
    """

    def __init__(self, shape: MoEShape) -> None:
        self.shape = shape
        self._ggml = _Ggml()
        n, e, k = shape.n_layers, shape.n_experts, shape.n_used
        self._router = np.zeros((n, e), dtype=np.float32)  # probabilities (one split) or logits (fallback)
        self._topk = np.full((n, k), -1, dtype=np.int32)
        self._weights = np.zeros((n, k), dtype=np.float32)
        self._norm = np.zeros((n, k), dtype=np.float32)
        self._targets = {kind: (int(array.ctypes.data), width, dtype) for kind, array, width, dtype in (
            (_LOGITS, self._router, e, GGML_TYPE_F32), (_TOPK, self._topk, k, GGML_TYPE_I32),
            (_WEIGHTS, self._weights, k, GGML_TYPE_F32), (_NORM, self._norm, k, GGML_TYPE_F32))}
        self._seen = np.zeros(n, dtype=bool)
        self._normalized = False
        self.one_split = True  # False: the three-split fallback
        self._pending: tuple[int, int] | None = None
        self._fresh = 0  # tensors read since the last take
        self._rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, bool]] = []
        self._failed = False
        self._name_offset: int | None = None  # where ggml keeps a tensor's name, asked of ggml once
        self.callback = self._make_callback()  # keep the ctypes object alive as long as the context

    def _make_callback(self) -> Any:
        import llama_cpp

        def on_tensor(tensor: int, ask: bool, _user: Any) -> bool:
            try:
                return self._on_tensor(tensor, ask)
            except Exception:  # an exception here would abort llama.cpp's graph compute
                if not self._failed:
                    log.exception("MoE routing capture failed; routing of this model is not recorded")
                self._failed = True
                return True

        return llama_cpp.ggml_backend_sched_eval_callback(on_tensor)

    def _on_tensor(self, tensor: int, ask: bool) -> bool:
        if ask:  # called for every graph node: reject others with one 8-byte read
            if self._name_offset is None:
                self._name_offset = int(self._ggml.name_address(tensor) or 0) - tensor
            if self._failed or ctypes.c_uint64.from_address(tensor + self._name_offset).value != _PREFIX_U64:
                return False
            name = self._ggml.get_name(tensor)
            if not name or not name.startswith(_PREFIX):
                return False
            base, _, layer = name.rpartition(b"-")
            kind = _WANTED.get(base)
            if kind is None or not layer.isdigit() or int(layer) >= self.shape.n_layers:
                return False
            if kind == _NORM:
                self._normalized = True
            if (kind != _WEIGHTS) if self.one_split else (kind == _WEIGHTS and self._normalized):
                return False
            self._pending = (kind, int(layer))
            return True
        if self._pending is not None:
            kind, layer = self._pending
            self._pending = None
            if self._read(tensor, kind, layer) and self.one_split:
                self._read_sources(tensor, layer)
        return True

    def _read_sources(self, tensor: int, layer: int) -> None:
        probs, topk = _SOURCES.unpack(ctypes.string_at(tensor + _SOURCES_AT, _SOURCES.size))
        probs_name = self._ggml.get_name(probs) if probs else b""
        topk_name = self._ggml.get_name(topk) if topk else b""
        suffix = b"-%d" % layer
        if topk_name != b"ffn_moe_topk" + suffix or not (probs_name or b"").startswith(b"ffn_moe_probs" + suffix):
            log.info("MoE routing: sources of ffn_moe_weights%s are %r / %r; requesting each tensor instead",
                     suffix.decode(), probs_name, topk_name)
            self.one_split, self._fresh = False, 0
            self._seen[:] = False
            return
        self._read(probs, _LOGITS, layer)
        self._read(topk, _TOPK, layer)

    def _read(self, tensor: int, kind: int, layer: int) -> bool:
        ttype, _buffer, ne0, ne1, ne2, _ne3, nb0, nb1, nb2, _nb3 = _HEAD.unpack(ctypes.string_at(tensor, _HEAD.size))
        address, width, dtype = self._targets[kind]
        if ne0 == 1:  # [1, n, T]: gathered weights, reshaped probabilities
            row, tokens, stride, inner = ne1, ne2, nb2, nb1
        else:  # [n, T]
            row, tokens, stride, inner = ne0, ne1, nb1, nb0
        if tokens <= 0:
            return False  # no rows in this pass (the last layer only computes output rows)
        if ttype != dtype or row != width or nb0 != 4 or inner != 4:
            raise ModelError(f"unexpected MoE tensor layout (type {ttype}, ne {ne0}x{ne1}x{ne2}, nb {nb0}/{nb1}/{nb2})")
        self._ggml.tensor_get(tensor, address + layer * width * 4, (tokens - 1) * stride, width * 4)
        if kind == _LOGITS:
            self._seen[layer] = True
        self._fresh += 1
        return True

    # --- per generation ------------------------------------------------------------------

    def begin(self) -> None:
        """Forget the rows of the previous generation."""
        self._rows = []
        self._fresh = 0

    def take(self, index: int) -> None:
        """Keep the latest pass's routing as TokenStep ``index``'s (called after each sample)."""
        if self._fresh == 0 or self._failed:
            return
        if not self.one_split:
            weights = (self._norm if self._normalized else self._weights).copy()
        elif self._normalized:
            weights = self._weights / np.maximum(self._weights.sum(axis=-1, keepdims=True), 6.103515625e-5)
        else:
            weights = self._weights.copy()
        self._rows.append((index, self._router.copy(), self._topk.copy(), weights, self.one_split))
        self._fresh = 0

    def finish(self, indices: set[int]) -> MoERouting | None:
        """The routing of the TokenSteps with these indices (rows of other samples dropped)."""
        rows = [r for r in self._rows if r[0] in indices]
        self._rows = []
        if not rows or self._failed:
            return None
        layers = np.flatnonzero(self._seen)
        entropy = np.stack([router_entropy(r[1][layers], probabilities=r[4]) for r in rows])
        return MoERouting(
            n_experts=self.shape.n_experts,
            layers=tuple(int(i) for i in layers),
            token_index=tuple(r[0] for r in rows),
            experts=np.stack([r[2][layers] for r in rows]).astype(np.int32),
            weights=np.stack([r[3][layers] for r in rows]).astype(np.float32),
            entropy=entropy.astype(np.float32),
            normalized=self._normalized,
        )


def router_entropy(values: np.ndarray, *, probabilities: bool) -> np.ndarray:
    """Entropy (nats) of the softmax of the router logits, per row. ``probabilities``: ``values`` are
    the router's output instead: a softmax (rows sum to 1) as it is, sigmoid gates turned back into
    logits (``log p - log(1 - p)``)."""
    x = values.astype(np.float64)
    if probabilities:
        if np.allclose(x.sum(axis=-1), 1.0, atol=1e-3):
            p = np.clip(x, 0.0, 1.0)
            return np.maximum(-(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1), 0.0)
        p = np.clip(x, 1e-12, 1 - 1e-7)
        x = np.log(p) - np.log1p(-p)
    shifted = x - x.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.maximum(-(np.exp(log_p) * log_p).sum(axis=-1), 0.0)


def attach(llm: Any, capture: RoutingCapture) -> None:
    """Recreate ``llm``'s context with ``capture``'s eval callback (see the module docstring)."""
    from llama_cpp import _internals

    params = llm.context_params
    params.cb_eval = capture.callback
    params.cb_eval_user_data = None
    llm._ctx.close()
    try:
        llm._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    except ValueError as exc:
        raise ModelError(f"llama.cpp could not create a context with MoE routing capture ({exc}); "
                         "set [llm] moe_routing = false") from None
    llm.n_tokens = 0
