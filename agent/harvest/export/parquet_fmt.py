"""``parquet``: the SFT rows with provenance as columns, one Parquet file per split written in
row groups (pyarrow ParquetWriter), so memory stays flat however large the log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import MissingExtra
from agent.harvest.export import sft
from agent.harvest.export.examples import Conversation, Example
from agent.private import private_dir, private_opener

FILE_FORMAT = "parquet"
ROW_GROUP = 2048
# provenance key -> (column, pyarrow type name)
COLUMNS = {
    "turn_id": ("turn_ids", "int64"), "user_turn_id": ("user_turn_ids", "int64"),
    "created_at": ("created_at", "float64"), "backend": ("backends", "string"),
    "model_id": ("model_ids", "string"), "model_hash": ("model_hashes", "string"),
    "persona": ("personas", "string"), "adapters_json": ("adapters", "string"),
    "sampler_json": ("samplers", "string"), "source": ("sources", "string"),
    "language": ("languages", "string"), "rating": ("ratings", "string"),
    "edited": ("edited", "bool_"), "interrupted": ("interrupted", "bool_"),
}


def examples(conv: Conversation) -> Iterator[Example]:
    """The SFT conversation with one list column per provenance field (one value per reply)."""
    for example in sft.examples(conv):
        sources = example.row["provenance"]
        row: dict[str, Any] = {"messages": example.row["messages"], "conversation_id": conv.id}
        for key, (column, _) in COLUMNS.items():
            row[column] = [p[key] for p in sources]
        yield Example(conv.id, row, example.key, example.turns, sources)


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


class ParquetSink:
    """``data/<split>.parquet``, rows buffered and written a row group at a time."""

    def __init__(self, root: Path, folder: str = "data") -> None:
        self.pa = _pyarrow()
        self.root, self.folder = root, folder
        self.schema = schema()
        # the system allocator hands freed row groups back, so RSS stays flat (jemalloc keeps them)
        self.pa.set_memory_pool(self.pa.system_memory_pool())
        self._writers: dict[str, Any] = {}
        self._handles: dict[str, Any] = {}
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self.rows: dict[str, int] = {}

    def path(self, split: str) -> str:
        """The file of a split, relative to the export folder."""
        return f"{self.folder}/{split}.parquet"

    def write(self, split: str, row: dict[str, Any]) -> None:
        buffer = self._buffers.setdefault(split, [])
        buffer.append(row)
        if len(buffer) >= ROW_GROUP:
            self._flush(split)

    def _flush(self, split: str) -> None:
        buffer = self._buffers.get(split)
        if not buffer:
            return
        writer = self._writers.get(split)
        if writer is None:
            private_dir(self.root / self.folder)
            handle = self._handles[split] = open(self.root / self.path(split), "xb", opener=private_opener)
            writer = self._writers[split] = self.pa.parquet.ParquetWriter(handle, self.schema, compression="zstd")
            self.rows[self.path(split)] = 0
        writer.write_table(self.pa.Table.from_pylist(buffer, schema=self.schema))
        self.rows[self.path(split)] += len(buffer)
        buffer.clear()

    def close(self) -> dict[str, int]:
        for split in list(self._buffers):
            self._flush(split)
        for writer in self._writers.values():
            writer.close()
        for handle in self._handles.values():
            handle.close()
        return dict(self.rows)
