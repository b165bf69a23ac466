"""Read a delivery through embedded DuckDB: population extracts larger than memory.

``load_study(path, engine="duckdb")`` reads the parquet tables with DuckDB (in
process, no server) and hands pandas only the panel rows the study can use. A panel
row is kept when its person key is

.. math:: \\text{person\\_id} \\in A \\cup H \\cup B,

with :math:`A` the keys of the assignment, :math:`H` those of the household roster
and :math:`B` those of the benefit records (when given: their months are merged onto
the panel rows of their own person). The other rows (a population panel holds many
more persons than the study) are left out by a semi-join in SQL, before pandas sees
them. Nothing is dropped silently: their number of rows, of distinct persons and the
distinct keys themselves come back as :class:`Outside`, which
:meth:`ips_impact.Study.from_frames` adds to the same ledger entry ("rows of persons
neither randomized nor in a baseline household roster") and to the near-miss report
of the linkage as the pandas engine would have. The distinct keys of the whole panel
are screened for national register numbers first, with the rule and wording of
:func:`ips_impact.validate.check_no_national_numbers`.

The frames handed over have the dtypes the pandas reader gives
(:func:`ips_impact.io.readers.read_table`): DuckDB's Arrow output is cast back to the
file's Arrow schema and converted by :func:`_to_frame`, column by column; text columns
are decoded once per distinct value. The study built from them is the same, ledger
included, to the last bit (``tests/test_duckdb_engine.py``).

Determinism: every query has an explicit ``ORDER BY`` — the panel by (person key,
period) as written in the file, the other tables by their position in the file
(``file_row_number``) — so the result depends neither on DuckDB's threads nor on the
file's row order. Settings (``duckdb_config=``): ``threads`` (default: the cores this
process may use), ``memory_limit`` (default: a quarter of the physical memory, the
rest is for the pandas frames built from the result), ``temp_directory`` (default: a
fresh temporary folder, removed afterwards) where DuckDB spills what does not fit.

A table may be a folder of parquet parts (``panel/part-2019.parquet``, …) or a glob in
the mapping file's ``file`` option (``file = "panel/part-*.parquet"``): the parts are
read as one table, in the order of their names. CSV and Excel tables are read by the
pandas reader (same readings, same messages), without the semi-join.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from ips_impact import validate as V
from ips_impact.errors import DataContractError, LinkageError, UsageError
from ips_impact.io.mapping import ColumnMap
from ips_impact.io.readers import (
    CODES_ATTR,
    PARQUET_SUFFIXES,
    TABLE_NAMES,
    TEXT_COLUMNS,
    _as_text,
    find_table_parts,
    read_table,
)
from ips_impact.io.schema import KEY_COLUMNS

__all__ = ["ENGINES", "Outside", "check_engine", "read_delivery", "find_tables", "import_duckdb"]

#: Engines of :func:`ips_impact.load_study`.
ENGINES = ("pandas", "duckdb")
#: DuckDB settings :func:`read_delivery` accepts (``duckdb_config=`` of ``load_study``).
SETTINGS = ("threads", "memory_limit", "temp_directory")


@dataclass(frozen=True)
class Outside:
    """Panel rows left out in SQL: persons neither randomized, nor in the roster, nor in the benefits.

    ``keys`` are their distinct person keys (text, sorted), used for the near-miss
    report of the linkage only; they never reach a result.
    """

    n_rows: int
    n_persons: int
    keys: np.ndarray


def import_duckdb() -> ModuleType:
    """Import DuckDB, or raise :class:`UsageError` with the fix when it is not installed."""
    try:
        import duckdb
    except ImportError:
        raise UsageError(
            "load_study(engine='duckdb') needs the duckdb package, which is not installed",
            fix="pip install 'ips_impact[scale]' (or use engine='pandas').",
        ) from None
    return duckdb


def check_engine(engine: object) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`, else raise :class:`UsageError`."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(map(repr, ENGINES))}; you passed {engine!r}",
                         fix="pass engine='pandas' (the default) or engine='duckdb' for population extracts.")
    return engine


def _settings(config: Mapping[str, object] | None) -> dict[str, Any]:
    config = dict(config or {})
    unknown = sorted(set(config) - set(SETTINGS))
    if unknown:
        raise UsageError(f"duckdb_config has unknown settings {', '.join(map(repr, unknown))}",
                         fix=f"use {', '.join(SETTINGS)}.")
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    out: dict[str, Any] = {"threads": cores}
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        out["memory_limit"] = f"{max(ram // 4, 2**28) // 2**20}MiB"
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        out["memory_limit"] = "4GiB"
    threads = config.get("threads", out["threads"])
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"duckdb_config threads must be a positive integer, got {threads!r}",
                         fix="pass e.g. duckdb_config={'threads': 2}.")
    out.update(config)
    return out


# ---------------------------------------------------------------------- files
def find_tables(folder: str | Path, cmap: ColumnMap) -> dict[str, list[Path]]:
    """Find the files of each table: one file, a folder of parquet parts, or a glob of the ``file`` option.

    See :func:`ips_impact.io.readers.find_table_parts`; file and folder names are matched
    without regard to case (``Panel/``, ``assignment.PARQUET``), parts sorted by name.
    """
    names = {t: cmap.read_options(t).file for t in TABLE_NAMES}
    return find_table_parts(folder, files={t: f for t, f in names.items() if f})


# ---------------------------------------------------------------------- reading
def read_delivery(
    folder: str | Path, cmap: ColumnMap, *, config: Mapping[str, object] | None = None,
) -> tuple[dict[str, pd.DataFrame], Outside | None, dict[str, str]]:
    """Read every table of a delivery; the panel filtered to the study's persons in SQL.

    Returns the frames (as :func:`ips_impact.io.readers.read_table` would give them,
    the panel without the rows of :class:`Outside`), the rows left out (``None`` when
    the panel was read whole: a text panel, or keys neither text nor integers), and
    the source of each table.
    """
    duckdb = import_duckdb()
    settings = _settings(config)
    files = find_tables(folder, cmap)
    own_tmp = "temp_directory" not in settings
    tmp = tempfile.mkdtemp(prefix="ips_impact_duckdb_") if own_tmp else str(settings["temp_directory"])
    try:
        con = duckdb.connect(config={"threads": int(settings["threads"]),
                                     "memory_limit": str(settings["memory_limit"]),
                                     "temp_directory": tmp, "preserve_insertion_order": False})
    except duckdb.Error as exc:
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"DuckDB refused the settings: {str(exc).splitlines()[0]}",
                         fix="pass e.g. duckdb_config={'threads': 2, 'memory_limit': '8GB'}.") from None
    try:
        frames: dict[str, pd.DataFrame] = {}
        for name, parts in files.items():
            if name == "panel":
                continue
            frames[name] = _read(con, parts, name, cmap)
        outside = None
        panel_parts = files["panel"]
        randomized = _final_keys(frames["assignment"], "assignment", cmap, source=False)
        if _is_parquet(panel_parts, "panel") and randomized is not None:
            keep = set(randomized)
            for name in ("households", "benefits"):
                if name in frames:
                    keep |= _final_keys(frames[name], name, cmap, source=False) or set()
            frames["panel"], outside = _read_panel(con, panel_parts, cmap, keep, frames["assignment"])  # closes con
        else:  # a text panel, or an assignment without keys (from_frames says what is missing)
            frames["panel"] = _read(con, panel_parts, "panel", cmap)
    finally:
        con.close()
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    gc.collect()  # DuckDB's result objects may sit in reference cycles
    _trim_heap()
    sources = {name: str(p[0]) if len(p) == 1 else str(p[0].parent) for name, p in files.items()}
    return frames, outside, sources


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; a no-op elsewhere).

    DuckDB's result buffers are freed once the frames are built, but glibc keeps the
    pages (about 60 bytes per panel row measured at 15 M rows); ``Study.from_frames``
    then needs the memory again for its gather.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:  # pragma: no cover - no C library to load
        pass


def _is_parquet(parts: list[Path], table: str) -> bool:
    kinds = {p.suffix.lower() in PARQUET_SUFFIXES for p in parts}
    if len(parts) > 1 and kinds != {True}:
        raise DataContractError(f"table '{table}' is given as {len(parts)} files that are not all parquet",
                                table=table, examples=[p.name for p in parts][:5],
                                fix="give several parts as parquet files only, or one text file.")
    return kinds == {True}


def _keep_text(cmap: ColumnMap, table: str) -> set[str]:
    """Name the columns (in the file) read as text: the set ``load_study`` gives ``read_table``."""
    keys = cmap.source_names(table, set(KEY_COLUMNS) | set(cmap.key_columns(table)))
    return set(TEXT_COLUMNS) | keys | cmap.source_names(table, set(TEXT_COLUMNS))


def _read(con: Any, parts: list[Path], table: str, cmap: ColumnMap) -> pd.DataFrame:
    """One whole table: parquet through DuckDB in file order, text and Excel through the pandas reader."""
    if not _is_parquet(parts, table):
        return read_table(parts[0], table=table, options=cmap.read_options(table),
                          key_columns=cmap.source_names(table, set(KEY_COLUMNS) | set(cmap.key_columns(table))),
                          text_columns=cmap.source_names(table, set(TEXT_COLUMNS)),
                          keep_codes=_keep_text(cmap, table) if table == "panel" else ())
    schema, cols = _schema(parts, table)
    order = "file_row_number" if len(parts) == 1 else "filename, file_row_number"
    sql = (f"SELECT {', '.join(map(_q, cols))} FROM {_source(parts, filename=len(parts) > 1)} "
           f"ORDER BY {order}")
    return _to_frame(_query(con, sql, table), schema, _keep_text(cmap, table), table=table, parts=parts,
                     keep_codes=_keep_text(cmap, table) if table == "panel" else ())


def _read_panel(con: Any, parts: list[Path], cmap: ColumnMap, keep: set[str],
                assignment: pd.DataFrame) -> tuple[pd.DataFrame, Outside | None]:
    """Read the panel rows of the persons in ``keep`` (and rows without a key), sorted by (key, period).

    Text keys and periods travel as integer codes into their distinct values (joined
    in SQL): the sort is on two integers and no string is copied per row.
    """
    import pyarrow as pa

    schema, cols = _schema(parts, "panel")
    src = _source_column(cmap, "panel", "person_id", cols)
    per = _source_column(cmap, "panel", "period", cols)
    keep_text = _keep_text(cmap, "panel")
    if src is None or not _joinable(schema.field(src).type):
        # no key to join on (from_frames names the problem), or keys whose text form
        # DuckDB would spell differently from the pandas reader: read the panel whole
        order = "file_row_number" if len(parts) == 1 else "filename, file_row_number"
        sql = (f"SELECT {', '.join(map(_q, cols))} FROM {_source(parts, filename=len(parts) > 1)} "
               f"ORDER BY {order}")
        return _to_frame(_query(con, sql, "panel"), schema, keep_text, table="panel", parts=parts,
                         keep_codes=keep_text), None
    key = f"CAST(p.{_q(src)} AS VARCHAR)"
    # the distinct keys of the whole panel with their rows: small next to the panel (one per person)
    counts = _query(con, f"SELECT {key} AS k, count(*) AS n FROM {_source(parts, row_number=False)} AS p "
                         f"WHERE p.{_q(src)} IS NOT NULL GROUP BY k ORDER BY k", "panel")
    raw = counts.column("k").to_numpy(zero_copy_only=False).astype(object)
    n = counts.column("n").to_numpy().astype(np.int64)
    del counts
    final = np.asarray(_final_keys(pd.DataFrame({src: raw}), "panel", cmap, source=True, distinct=False),
                       dtype=object)
    _screen_keys(con, parts, key, raw, final, n)
    kept = (pd.Index(pd.unique(np.asarray(list(keep), dtype=object))).get_indexer(final) >= 0) if keep \
        else np.zeros(len(raw), dtype=bool)
    out_keys = np.sort(pd.unique(final[~kept])).astype(object) if (~kept).any() else np.array([], dtype=object)
    outside = Outside(n_rows=int(n[~kept].sum()), n_persons=int(len(out_keys)), keys=out_keys)
    if not kept.any():
        from ips_impact import link as L

        near = L.near_misses("panel", _final_keys(assignment, "assignment", cmap, source=False) or (), out_keys)
        hints = "; ".join(f"{int(r.n_persons)} would link after repairing {r.kind} ({r.fix})"
                          for r in near.itertuples())
        raise LinkageError(
            f"no panel row belongs to a randomized person or a member of their household: all "
            f"{outside.n_rows} rows ({outside.n_persons} persons) are outside the study"
            + (f". Near misses: {hints}" if hints else ""), table="panel", column="person_id",
            n_rows=outside.n_rows,
            fix="compare the keys of the assignment and the panel (same pseudonymisation, text with zeros).")
    kept_raw = raw[kept]
    con.register("_ii_keep", pa.table({"k": pa.array(kept_raw.tolist(), type=pa.string()),
                                       "code": pa.array(np.arange(len(kept_raw), dtype=np.int32))}))
    coded: dict[str, np.ndarray] = {}
    select = []
    joins = [f"LEFT JOIN _ii_keep AS k ON {key} = k.k"]
    text_key = _is_text(schema.field(src).type)
    sort = ["k.code"] if text_key else [f"p.{_q(src)}"]
    if text_key:  # the key's text once per person, the rows as codes into it
        coded[src] = kept_raw
    if per is not None:
        if _is_text(schema.field(per).type):
            periods = _query(con, f"SELECT DISTINCT p.{_q(per)} AS v FROM {_source(parts, row_number=False)} AS p "
                                  f"WHERE p.{_q(per)} IS NOT NULL ORDER BY v", "panel")
            values = periods.column("v").to_numpy(zero_copy_only=False).astype(object)
            con.register("_ii_periods", pa.table({"v": periods.column("v"),
                                                  "code": pa.array(np.arange(len(values), dtype=np.int32))}))
            joins.append(f"LEFT JOIN _ii_periods AS q ON p.{_q(per)} = q.v")
            coded[per] = values
            sort.append("q.code")
        else:
            sort.append(f"p.{_q(per)}")
    for c in cols:
        if c == src and text_key:
            select.append(f"k.code AS {_q(c)}")
        elif c == per and c in coded:
            select.append(f"q.code AS {_q(c)}")
        else:
            select.append(f"p.{_q(c)}")
    sql = (f"SELECT {', '.join(select)} FROM {_source(parts, row_number=False)} AS p {' '.join(joins)} "
           f"WHERE p.{_q(src)} IS NULL OR k.code IS NOT NULL ORDER BY {', '.join(sort)}")
    held = [_query(con, sql, "panel")]
    # the panel is read last: closing the connection hands DuckDB's memory back before
    # pandas allocates the frame (peak: the Arrow result and the frame, not DuckDB too)
    con.close()
    return _to_frame(held.pop(), schema, keep_text, table="panel", parts=parts, coded=coded,
                     keep_codes=keep_text), outside


def _is_text(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _screen_keys(con: Any, parts: list[Path], key: str, raw: np.ndarray, final: np.ndarray,
                 n: np.ndarray) -> None:
    """Apply the national-number rule to the distinct keys of the whole panel, kept or left out.

    The decision is :func:`ips_impact.validate.check_no_national_numbers` on the same
    distinct values the pandas engine screens; the rows are counted and named by their
    position in the file, as that engine does.
    """
    try:
        V.check_no_national_numbers(pd.DataFrame({"person_id": final}), "panel", ("person_id",))
    except DataContractError as exc:
        flagged = V.looks_like_national_number(pd.Series(final, dtype=object)).to_numpy(dtype=bool)
        import pyarrow as pa

        con.register("_ii_flagged", pa.table({"k": pa.array(raw[flagged].tolist(), type=pa.string())}))
        where = f"{key} IN (SELECT k FROM _ii_flagged)"
        rows = _query(con, f"SELECT {'filename, ' if len(parts) > 1 else ''}file_row_number AS r FROM "
                           f"{_source(parts, filename=len(parts) > 1)} AS p WHERE {where} ORDER BY "
                           f"{'filename, ' if len(parts) > 1 else ''}file_row_number LIMIT 5", "panel")
        if len(parts) > 1:
            examples = [f"row {r} of {Path(f).name}" for f, r in zip(rows.column("filename").to_pylist(),
                                                                    rows.column("r").to_pylist())]
        else:
            examples = [f"row {r}" for r in rows.column("r").to_pylist()]
        raise DataContractError(exc.problem, table="panel", column="person_id", n_rows=int(n[flagged].sum()),
                                examples=examples, fix=exc.fix) from None


def _final_keys(frame: pd.DataFrame, table: str, cmap: ColumnMap, *, source: bool,
                distinct: bool = True) -> Any:
    """Person keys as ``Study.from_frames`` compares them: mapping applied, then as text.

    ``frame`` holds the file's columns (``source=True``: the person key under its name
    in the file) and goes through the same :meth:`ColumnMap.apply` and key rule
    (:func:`ips_impact.validate.check_keys_are_strings`) as in ``from_frames``.
    ``None`` when the table has no person key (``from_frames`` will say so).
    """
    mapped = cmap.apply(frame, table)
    if "person_id" not in mapped.columns:
        return None
    col = mapped["person_id"]
    col = col[col.notna()]
    text = V.check_keys_are_strings(pd.DataFrame({"person_id": col.to_numpy(dtype=object)}), table,
                                    ("person_id",))["person_id"]
    return set(text.tolist()) if distinct else text.to_numpy(dtype=object)


def _source_column(cmap: ColumnMap, table: str, target: str, cols: Iterable[str]) -> str | None:
    """Find the file's name of contract column ``target`` (after the mapping's renames), if present."""
    cols = list(cols)
    renamed = [s for s, t in cmap.for_table(table).items() if t == target and s in cols]
    if renamed:
        return renamed[0]
    moved = {s for s, t in cmap.for_table(table).items() if s in cols and s != t}
    return target if target in cols and target not in moved else None


def _joinable(t: Any) -> bool:
    """Keys whose text DuckDB writes as the pandas reader does: text, or integers (``str(int)``)."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t))


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _source(parts: list[Path], *, filename: bool = False, row_number: bool = True) -> str:
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
    return (f"read_parquet([{files}]{', file_row_number = true' if row_number else ''}"
            f"{', filename = true' if filename else ''})")


def _query(con: Any, sql: str, table: str) -> Any:
    duckdb = import_duckdb()
    try:
        # batches, so that DuckDB's own copy of the result can be evicted while Arrow's is built
        import pyarrow as pa

        reader = con.sql(sql).to_arrow_reader(1_000_000)
        return pa.Table.from_batches(list(reader), schema=reader.schema)
    except duckdb.Error as exc:
        raise DataContractError(
            f"DuckDB cannot read the table: {type(exc).__name__}: {str(exc).splitlines()[0]}", table=table,
            fix="check that the files are valid parquet and that all parts have the same columns and types.",
        ) from None


def _schema(parts: list[Path], table: str) -> tuple[Any, list[str]]:
    """Read the Arrow schema of the (first) file; list its columns without a stored pandas index."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(parts[0])
    except (OSError, ValueError) as exc:
        raise DataContractError(f"file {parts[0].name!r} cannot be read: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0]}", table=table,
                                fix="check that the file is valid parquet.") from None
    index = set()
    if schema.metadata and b"pandas" in schema.metadata:
        meta = json.loads(schema.metadata[b"pandas"])
        index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    return schema, [f.name for f in schema if f.name not in index]


# ---------------------------------------------------------------------- Arrow → pandas
def _to_frame(result: Any, schema: Any, keep_text: set[str], *, table: str,
              parts: list[Path] | None = None, coded: Mapping[str, np.ndarray] | None = None,
              keep_codes: Iterable[str] = ()) -> pd.DataFrame:
    """DuckDB's Arrow result as the frame :func:`~ips_impact.io.readers.read_table` gives for parquet.

    The one place where the two engines' readings meet (align it with the pandas
    reader when that changes):

    * text in the file (``string``): object, decoded once per distinct value (shared
      string objects); missing as NaN for the columns of ``keep_text`` (but ``period``
      and ``month``), as ``None`` otherwise — as ``_read_parquet`` does. Columns in
      ``coded`` arrive as integer codes into those distinct values (joined in SQL).
      Text columns of ``keep_codes`` (and ``keep_text``) stay codes, a ``Categorical``
      of the text listed in ``frame.attrs[CODES_ATTR]``, as ``read_table(...,
      keep_codes=)`` hands them (``Study.from_frames`` decodes them once cut to its rows);
    * categories in the file (``dictionary``): ``Categorical`` with the categories
      pyarrow reads from the file;
    * anything else: cast back to the file's Arrow type and converted by one pyarrow
      ``to_pandas`` with the file's pandas metadata (extension dtypes, time zones, and
      the same consolidated blocks as the pandas reader); integers and booleans the
      file holds missing values of become float64 / object as in a read of the whole
      file, even when the rows kept have none;
    * then, as ``read_table``: non-text columns of ``keep_text`` as text (``_as_text``),
      but datetimes, ``period`` and ``month``.
    """
    import pyarrow as pa

    names = list(result.column_names)
    meta = None
    if schema.metadata and b"pandas" in schema.metadata:
        meta = json.loads(schema.metadata[b"pandas"])
    has_nulls = _file_nulls(schema, parts or [], names)
    as_codes = set(keep_codes) & keep_text
    held: list[str] = []
    text: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name in names:
        col = result.column(name)
        target = schema.field(name).type
        if _is_text(target):
            keep = name in keep_text and name not in ("period", "month")
            missing = np.nan if keep else None
            if coded and name in coded:
                words = np.asarray(coded[name], dtype=object)
                codes = col.fill_null(-1).to_numpy().astype(np.int32) if len(col) else np.array([], np.int32)
            else:
                words, codes = _dictionary(col)
            del col
            if name in as_codes and len(words):  # as the pandas reader: text categories stay codes
                text[name] = pd.Categorical.from_codes(codes, categories=pd.Index(words, dtype=object),
                                                       validate=False)
                held.append(name)
            else:
                codes[codes < 0] = len(words)
                text[name] = np.append(words, np.array([missing], dtype=object))[codes]
            del codes
            continue
        elif pa.types.is_dictionary(target):
            text[name] = _categorical(col, name, parts or [])
        else:
            if col.type != target:
                try:
                    col = col.cast(target)
                except (ValueError, NotImplementedError) as exc:  # pyarrow.ArrowInvalid is a ValueError
                    raise DataContractError(
                        f"DuckDB reads the column as {col.type}, which cannot be converted back to the "
                        f"file's {target}: {str(exc).splitlines()[0]}", table=table, column=name,
                        fix="use engine='pandas' for this delivery, or store the column as text or numbers.",
                    ) from None
            rest[name] = col
        del col
    del result
    if rest:
        numbers = pa.table(rest)
        no_nulls = {n for n, c in rest.items() if c.null_count == 0}
        del rest
        if meta is not None:
            present = set(numbers.column_names)
            m = dict(meta, index_columns=[], columns=[c for c in meta.get("columns", [])
                                                      if (c.get("field_name") or c.get("name")) in present])
            numbers = numbers.replace_schema_metadata({b"pandas": json.dumps(m)})
        frame = numbers.to_pandas(self_destruct=True)
        del numbers
        frame.index = pd.RangeIndex(len(frame))
        for name in frame.columns:
            s = frame[name]
            if name in has_nulls and name in no_nulls and isinstance(s.dtype, np.dtype):
                if s.dtype.kind in "iu":  # the whole file has missing values: float64, as read whole
                    frame[name] = s.astype("float64")
                elif s.dtype.kind == "b":
                    frame[name] = s.astype(object)
    else:
        frame = pd.DataFrame(index=pd.RangeIndex(len(next(iter(text.values()))) if text else 0))
    for name in names:  # back in the file's order, text columns inserted where they were
        if name in text:
            values = text.pop(name)
            frame.insert(names.index(name), name, values.to_numpy() if isinstance(values, pd.Series) else values)
    for name in frame.columns:
        t = schema.field(name).type
        if _is_text(t):
            continue  # text in the file: already str, missing as NaN / None
        if name in keep_text and not isinstance(frame[name].dtype, pd.PeriodDtype):
            if pd.api.types.is_datetime64_any_dtype(frame[name]) or name in ("period", "month"):
                continue
            frame[name] = _as_text(frame[name])
    if held:
        frame.attrs[CODES_ATTR] = sorted(held)
    pa.default_memory_pool().release_unused()
    return frame


def _dictionary(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a text column (object, first appearance) and each row's code (int32, -1 missing)."""
    import pyarrow as pa

    # one chunk first: unifying the dictionaries of a hundred batches costs more than the copy
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    enc = col if pa.types.is_dictionary(col.type) else col.dictionary_encode()
    words = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
    codes = enc.indices.fill_null(-1).to_numpy().astype(np.int32)
    return words, codes


def _categorical(col: Any, name: str, parts: list[Path]) -> pd.Series:
    """Rebuild a column stored as categories with the categories a pyarrow read of the file gives."""
    import pyarrow.parquet as pq

    ref = pq.read_table([str(p) for p in parts] if len(parts) > 1 else parts[0], columns=[name],
                        use_pandas_metadata=True).to_pandas()[name]
    values = col.to_pandas()
    return pd.Series(pd.Categorical(values, categories=ref.cat.categories, ordered=ref.cat.ordered), name=name)


def _file_nulls(schema: Any, parts: list[Path], names: list[str]) -> set[str]:
    """Find the integer and boolean columns with a missing value somewhere in the files (parquet statistics)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = [n for n in names
              if pa.types.is_integer(schema.field(n).type) or pa.types.is_boolean(schema.field(n).type)]
    if not wanted or not parts:
        return set()
    out = set()
    for p in parts:
        md = pq.ParquetFile(p).metadata
        index = {md.schema.column(i).path: i for i in range(md.num_columns)}
        for n in wanted:
            if n in out:
                continue
            j = index.get(n)
            for g in range(md.num_row_groups):
                stats = md.row_group(g).column(j).statistics if j is not None else None
                if stats is None or not stats.has_null_count or stats.null_count > 0:
                    out.add(n)  # no statistics: count it as possibly missing, then check below
                    break
    if out:
        out = _count_nulls(parts, sorted(out))
    return out


def _count_nulls(parts: list[Path], names: list[str]) -> set[str]:
    """Find the columns among ``names`` with a missing value (a pyarrow scan of those columns only)."""
    import pyarrow.parquet as pq

    found = set()
    for p in parts:
        pf = pq.ParquetFile(p)
        for g in range(pf.metadata.num_row_groups):
            rg = pf.read_row_group(g, columns=[n for n in names if n not in found])
            found |= {n for n in rg.column_names if rg.column(n).null_count > 0}
            if len(found) == len(names):
                return found
    return found
