"""Reading tabular outs in chunks (the only place pandas and pyarrow are imported).

A check never holds a whole table: CSV and JSON Lines are read ``CHUNK_ROWS`` rows at a time,
Parquet one record batch at a time, so a 1 GB CSV costs one chunk of memory per pass.
The exception is a ``python:`` check, which is handed the whole table (one copy).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from enum import Enum
from typing import Any

from ..errors import BuildFailed

__all__ = ["CHUNK_ROWS", "read_chunks", "read_table"]

CHUNK_ROWS = 200_000


class _Format(Enum):
    """How a tabular out is read, by its extension."""

    PARQUET = "parquet"
    JSONL = "jsonl"
    TSV = "tsv"
    CSV = "csv"


def _kind(path: str) -> _Format:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return _Format.PARQUET
    if lower.endswith((".jsonl", ".ndjson")):
        return _Format.JSONL
    return _Format.TSV if lower.endswith(".tsv") else _Format.CSV


def read_chunks(
    root: str,
    rel: str,
    chunk_rows: int = CHUNK_ROWS,
    columns: list[str] | None = None,
    text_columns: Collection[str] = (),
) -> Iterator[Any]:
    """DataFrames of at most ``chunk_rows`` rows each (0: the whole table), in file order
    (at least one, maybe empty, so the column names of an empty table are known).
    ``text_columns`` are read as text: pandas infers types per chunk, so a column that is
    numeric in one chunk and text in another must be read as text throughout to be
    profiled and checked consistently."""
    for chunk in _chunks(root, rel, chunk_rows, columns, text_columns):
        for col in text_columns:
            if col in chunk.columns and chunk[col].dtype != "str":
                chunk[col] = chunk[col].where(chunk[col].isna(), chunk[col].astype(str))
        yield chunk


def _chunks(  # long: one reader per table format, each a few lines; kept side by side
    root: str,
    rel: str,
    chunk_rows: int,
    columns: list[str] | None,
    text_columns: Collection[str],
) -> Iterator[Any]:
    import pandas as pd

    full = os.path.join(root, rel)
    kind = _kind(rel)
    try:
        if kind is _Format.PARQUET:
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise BuildFailed(
                    f"reading {rel} needs pyarrow", hint='pip install "mlbuild[parquet]"'
                ) from None
            if not chunk_rows:
                import pandas as pd

                yield pd.read_parquet(full, columns=columns)
                return
            pf = pq.ParquetFile(full)
            empty = True
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
                empty = False
                yield batch.to_pandas()
            if empty:
                yield pf.schema_arrow.empty_table().to_pandas()
            return
        if kind is _Format.JSONL:
            if os.path.getsize(full) == 0:
                yield pd.DataFrame()
                return
            if not chunk_rows:
                yield pd.read_json(full, lines=True)
                return
            reader: Any = pd.read_json(full, lines=True, chunksize=chunk_rows)
        else:
            csv_args: dict[str, Any] = {
                "sep": "\t" if kind is _Format.TSV else ",",
                "usecols": columns,
                "dtype": {c: str for c in text_columns} or None,
            }
            if not chunk_rows:
                yield pd.read_csv(full, **csv_args)
                return
            reader = pd.read_csv(full, chunksize=chunk_rows, **csv_args)
        with reader:
            first = True
            for chunk in reader:
                first = False
                yield chunk if columns is None or kind is not _Format.JSONL else chunk[columns]
            if first:
                yield pd.DataFrame()
    except BuildFailed:
        raise
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        if isinstance(exc, pd.errors.EmptyDataError):
            yield pd.DataFrame()
            return
        what = kind.value.upper()
        raise BuildFailed(f"cannot read {rel} as {what} ({_first_line(exc)})") from None
    except Exception as exc:  # pyarrow raises its own error types for a corrupt file
        what = kind.value.upper()
        raise BuildFailed(f"cannot read {rel} as {what} ({_first_line(exc)})") from None


def read_table(root: str, rel: str) -> Any:
    """The whole table in one read (for ``python:`` checks): one copy in memory, never the
    chunks and their concatenation at once."""
    chunks = list(read_chunks(root, rel, chunk_rows=0))
    return chunks[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
