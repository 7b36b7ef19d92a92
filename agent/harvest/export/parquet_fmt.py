"""``parquet``: the SFT rows with provenance as columns, one Parquet file per split.

The sink is columnar: each row's messages and provenance are flattened into per-column Python lists
as they arrive (no per-row dicts kept); every ``ROW_GROUP_MESSAGES`` messages (or
``ROW_GROUP_CHARS`` characters of text) the lists become Arrow arrays (list offsets + flat values)
written as one row group, so memory stays flat however large the log. Columns whose values repeat
(roles, model ids, personas, sampler and adapter JSON) are dictionary-encoded by the Parquet
writer: each distinct text is stored once per row group.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import Any

from agent.errors import MissingExtra
from agent.harvest.export import sft
from agent.harvest.export.examples import Conversation, Example
from agent.private import private_dir, private_opener

FILE_FORMAT = "parquet"
ROW_GROUP_MESSAGES = 65_536  # messages buffered per split before a row group is written
ROW_GROUP_CHARS = 32 << 20  # or this many characters of message text (UTF-8 offsets stay in int32)
# provenance key -> (column, pyarrow type name)
COLUMNS = {
    "turn_id": ("turn_ids", "int64"), "user_turn_id": ("user_turn_ids", "int64"),
    "created_at": ("created_at", "float64"), "backend": ("backends", "string"),
    "model_id": ("model_ids", "string"), "model_hash": ("model_hashes", "string"),
    "persona": ("personas", "string"), "adapters_json": ("adapters", "string"),
    "sampler_json": ("samplers", "string"), "source": ("sources", "string"),
    "language": ("languages", "string"), "rating": ("ratings", "string"),
    "edited": ("edited", "bool_"), "interrupted": ("interrupted", "bool_"),
    "original_user_text": ("original_user_texts", "string"),
}
REPEATED = ("backends", "model_ids", "model_hashes", "personas", "adapters", "samplers", "sources", "languages",
            "ratings", "original_user_texts")  # dictionary-encoded (unique texts like the messages are not tried)
_PICK = itemgetter(*COLUMNS)
_DICTIONARY = ["messages.list.element.role", *(f"{column}.list.element" for column in REPEATED)]
_ROLE = itemgetter("role")
_CONTENT = itemgetter("content")


def examples(conv: Conversation) -> Iterator[Example]:
    """The SFT rows (``messages``, ``conversation_id``, ``provenance``); :class:`ParquetSink`
    writes the provenance as one list column per field (one value per reply)."""
    return sft.examples(conv)


def _pyarrow() -> Any:
    try:
        import pyarrow  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ModuleNotFoundError:
        raise MissingExtra("parquet export needs the optional [harvest] extra (module pyarrow is not "
                           "installed): pip install 'epistemic-engine[harvest]'") from None
    return pyarrow


def schema() -> Any:
    """The Parquet schema of the rows."""
    pa = _pyarrow()
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    fields = [("messages", pa.list_(message)), ("conversation_id", pa.int64())]
    fields += [(column, pa.list_(getattr(pa, kind)())) for column, kind in COLUMNS.values()]
    return pa.schema(fields)


class _Columns:
    """One split's buffered rows as flat column lists with list offsets."""

    def __init__(self) -> None:
        self.message_offsets = [0]
        self.roles: list[str] = []
        self.contents: list[str] = []
        self.conversation_ids: list[int] = []
        self.chars = 0
        self.source_offsets = [0]
        self.sources: list[tuple[Any, ...]] = []  # provenance values in COLUMNS order

    def add(self, row: dict[str, Any]) -> None:
        messages, sources = row["messages"], row["provenance"]
        self.roles += map(_ROLE, messages)
        start = len(self.contents)
        self.contents += map(_CONTENT, messages)
        self.chars += sum(map(len, self.contents[start:]))
        self.message_offsets.append(len(self.roles))
        self.conversation_ids.append(row["conversation_id"])
        self.sources += map(_PICK, sources)
        self.source_offsets.append(len(self.sources))

    def batch(self, pa: Any, schema: Any) -> Any:
        """The rows as one Arrow record batch."""
        message_type = schema.field("messages").type.value_type
        messages = pa.StructArray.from_arrays([_array(pa, pa.string(), self.roles),
                                               _array(pa, pa.string(), self.contents)], fields=list(message_type))
        arrays = [pa.ListArray.from_arrays(_offsets(pa, self.message_offsets), messages),
                  _array(pa, pa.int64(), self.conversation_ids)]
        offsets = _offsets(pa, self.source_offsets)
        values = list(zip(*self.sources, strict=True)) if self.sources else [()] * len(COLUMNS)
        for (column, _), column_values in zip(COLUMNS.values(), values, strict=True):
            kind = schema.field(column).type.value_type
            arrays.append(pa.ListArray.from_arrays(offsets, _array(pa, kind, column_values)))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _offsets(pa: Any, offsets: list[int]) -> Any:
    import numpy

    return pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(numpy.array(offsets, numpy.int32))])


def _array(pa: Any, kind: Any, values: Sequence[Any]) -> Any:
    """An Arrow array of non-null values built from its buffers.

    ``pa.array`` on Python lists would do the same but imports pandas on first use (half a second
    and ~50 MB of resident memory); strings are UTF-8 encoded one by one and joined."""
    import numpy

    n = len(values)
    if kind == pa.string():
        joined = "".join(values)
        if joined.isascii():  # ids, hashes, JSON: one character is one byte
            data, lengths = joined.encode("ascii"), map(len, values)
        else:
            encoded = [text.encode() for text in values]
            data, lengths = b"".join(encoded), map(len, encoded)
        offsets = numpy.fromiter(accumulate(lengths, initial=0), numpy.int32, n + 1)
        return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    if kind == pa.bool_():
        bits = numpy.packbits(numpy.fromiter(values, numpy.bool_, n), bitorder="little")
        return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(bits)])
    dtype = {pa.int64(): numpy.int64, pa.float64(): numpy.float64}[kind]
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(numpy.fromiter(values, dtype, n))])


class ParquetSink:
    """``data/<split>.parquet``, rows flattened into columns and written a row group at a time.

    Called from the export's one thread only; it holds no lock."""

    def __init__(self, root: Path, folder: str = "data") -> None:
        self.pa = _pyarrow()
        self.root, self.folder = root, folder
        self.schema = schema()
        # the system allocator hands freed row groups back, so RSS stays flat (jemalloc keeps them)
        self.pa.set_memory_pool(self.pa.system_memory_pool())
        self._writers: dict[str, Any] = {}
        self._handles: dict[str, Any] = {}
        self._buffers: dict[str, _Columns] = {}
        self.rows: dict[str, int] = {}

    def path(self, split: str) -> str:
        """The file of a split, relative to the export folder."""
        return f"{self.folder}/{split}.parquet"

    def write(self, split: str, row: dict[str, Any]) -> None:
        buffer = self._buffers.get(split)
        if buffer is None:
            buffer = self._buffers[split] = _Columns()
        buffer.add(row)
        if len(buffer.roles) >= ROW_GROUP_MESSAGES or buffer.chars >= ROW_GROUP_CHARS:
            self._flush(split)

    def _flush(self, split: str) -> None:
        buffer = self._buffers.pop(split, None)
        if buffer is None or len(buffer.conversation_ids) == 0:
            return
        writer = self._writers.get(split)
        if writer is None:
            private_dir(self.root / self.folder)
            handle = self._handles[split] = open(self.root / self.path(split), "xb", opener=private_opener)
            writer = self._writers[split] = self.pa.parquet.ParquetWriter(
                handle, self.schema, compression="zstd", use_dictionary=_DICTIONARY)
            self.rows[self.path(split)] = 0
        batch = buffer.batch(self.pa, self.schema)
        writer.write_batch(batch, row_group_size=batch.num_rows)
        self.rows[self.path(split)] += batch.num_rows

    def close(self) -> dict[str, int]:
        for split in list(self._buffers):
            self._flush(split)
        for writer in self._writers.values():
            writer.close()
        for handle in self._handles.values():
            handle.close()
        return dict(self.rows)
