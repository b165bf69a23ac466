"""Read the study tables from parquet, csv/tsv/txt or Excel files, as a delivery comes.

Text files are read **as text** first, so that nothing is converted before the
mapping file has been applied: key columns keep their leading zeros whatever their
name in the extract, and every other column is converted to numbers only when all
its values are numbers in one reading. What the mapping file does not say is detected
from the file (separator, decimal mark, thousands mark); when the values allow two
readings, the file is refused with both readings and the option that settles it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError
from ips_impact.io.codes import decode_text
from ips_impact.io.mapping import ReadOptions

__all__ = ["read_table", "find_table_files", "find_table_parts", "PARQUET_SUFFIXES", "text_to_numbers",
           "TABLE_NAMES", "TEXT_COLUMNS", "CODES_ATTR"]

TABLE_NAMES = ("assignment", "panel", "households", "benefits", "takeup", "sites")
_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".txt", ".xlsx", ".xlsm")
#: Contract columns always kept as text: keys, codes, periods and dates (parsed later
#: with the study's frequency and date order).
TEXT_COLUMNS = ("person_id", "household_id", "index_person_id", "employer_id", "partner_id", "stratum",
                "site", "region", "role", "period", "month", "randomization_period", "randomization_date",
                "ips_start_date", "valid_from", "valid_to", "assessment_date", "sep_code", "nace",
                "joint_committee", "worker_class", "di_phase")
#: ``DataFrame.attrs`` key listing the columns :func:`read_table` handed over as codes.
CODES_ATTR = "ips_impact.text_codes"
_NA = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]
_SEPARATORS = (";", ",", "\t", "|")
_INT = re.compile(r"^[+-]?\d+$")
_DOT = re.compile(r"^[+-]?\d*\.\d+$")
_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_GROUPED_DOT = re.compile(r"^[+-]?[1-9]\d{0,2}(\.\d{3})+$")
_GROUPED_COMMA = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+$")
_EU = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+,\d+$")
_US = re.compile(r"^[+-]?\d{1,3}(,\d{3})+\.\d+$")
_SCI = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
_INF = {"inf", "+inf", "-inf", "infinity", "-infinity"}


def _show(value: str) -> str:
    return repr(value)


def text_to_numbers(
    values: pd.Series, *, decimal: str | None = None, thousands: str | None = None,
    table: str = "panel", column: str = "?",
) -> pd.Series | None:
    """Numbers from a text column, or ``None`` when the column is not numeric text.

    Integers with a leading zero (``"0123"``) are codes, not numbers: the column stays
    text. Without ``decimal``, ``"46,5"`` is read with a decimal comma; a column whose
    only separators could be either thousands groups or decimals (every value like
    ``"1.234"`` or ``"2,500"``) is refused with both readings.
    """
    s = values.astype("string").str.strip()
    s = s.mask(s.isin(_NA))
    uniq = pd.unique(s.dropna())
    if len(uniq) == 0:
        return None
    txt = pd.Series(uniq, dtype=object).astype(str)
    if thousands:  # a known thousands mark is removed before the values are classified
        txt = txt.str.replace(thousands, "", regex=False)
        thousands = ""
    low = txt.str.lower()
    is_inf = low.isin(_INF)
    body = txt[~is_inf]
    ints = body.str.fullmatch(_INT)
    if (ints & body.str.lstrip("+-").str.match(r"^0\d")).any():
        return None  # leading zeros: a code column
    dots, commas = body.str.fullmatch(_DOT), body.str.fullmatch(_COMMA)
    gdot, gcomma = body.str.fullmatch(_GROUPED_DOT), body.str.fullmatch(_GROUPED_COMMA)
    eu, us, sci = body.str.fullmatch(_EU), body.str.fullmatch(_US), body.str.fullmatch(_SCI)
    numeric_like = ints | dots | commas | gdot | gcomma | eu | us | sci
    if not numeric_like.all():
        return None
    dec, thou = decimal, thousands
    if dec is None:
        has_comma = (commas | gcomma | eu).any()
        has_dot = (dots | gdot | us).any()
        if eu.any() and not us.any() and not (dots & ~gdot).any():
            dec, thou = ",", thou if thou is not None else "."
        elif us.any() and not eu.any() and not (commas & ~gcomma).any():
            dec, thou = ".", thou if thou is not None else ","
        elif has_comma and has_dot:
            ex_c = body[commas | gcomma | eu].iloc[0]
            ex_d = body[dots | gdot | us].iloc[0]
            raise DataContractError(
                f"mixes decimal marks ({_show(ex_c)} has a comma, {_show(ex_d)} a point)",
                table=table, column=column, n_rows=int(values.notna().sum()),
                fix='set decimal = "," (or ".") and thousands in the mapping file\'s read options.',
            )
        elif has_comma:
            if (commas & ~gcomma).any():
                dec = ","  # "46,5", "0,75": only a decimal comma reads these
            elif thou is not None:
                dec = "." if thou == "," else ","
            else:
                ex = body[gcomma].iloc[0]
                raise DataContractError(
                    f"holds numbers like {_show(ex)} that read as {float(ex.replace(',', '.'))!r} (decimal comma) "
                    f"or {int(ex.replace(',', ''))!r} (thousands separator)",
                    table=table, column=column, n_rows=int(values.notna().sum()),
                    fix='say which: decimal = "," or thousands = "," in the mapping file\'s read options.',
                )
        elif has_dot:
            if (dots & ~gdot).any():
                dec = "."
            elif thou is not None:
                dec = "," if thou == "." else "."
            else:
                ex = body[gdot].iloc[0]
                raise DataContractError(
                    f"holds numbers like {_show(ex)} that read as {float(ex)!r} (decimal point) or "
                    f"{int(ex.replace('.', ''))!r} (thousands separator)",
                    table=table, column=column, n_rows=int(values.notna().sum()),
                    fix='say which: decimal = "." or thousands = "." in the mapping file\'s read options.',
                )
        else:
            dec = "."
    conv = txt.copy()
    if thou:
        conv = conv.str.replace(thou, "", regex=False)
    if dec == ",":
        if conv.str.contains(".", regex=False).any():
            ex = txt[conv.str.contains(".", regex=False)].iloc[0]
            raise DataContractError(
                f"has {_show(ex)} while the decimal mark is ','", table=table, column=column,
                n_rows=int(values.notna().sum()), fix="check the decimal and thousands options of the mapping file.",
            )
        conv = conv.str.replace(",", ".", regex=False)
    elif conv.str.contains(",", regex=False).any():
        ex = txt[conv.str.contains(",", regex=False)].iloc[0]
        raise DataContractError(
            f"has {_show(ex)} while the decimal mark is '.'", table=table, column=column,
            n_rows=int(values.notna().sum()), fix='set decimal = "," (or thousands = ",") in the mapping file.',
        )
    nums = pd.to_numeric(conv, errors="coerce")
    if nums.isna().any():
        return None
    lookup = dict(zip(uniq, nums.to_numpy(dtype="float64")))
    out = s.map(lookup).astype("float64")
    finite = out.dropna()
    if len(finite) and np.all(np.isfinite(finite)) and np.all(np.mod(finite, 1) == 0) and not out.isna().any():
        if (np.abs(finite) < 2**53).all():
            return pd.Series(out.to_numpy(dtype="int64"), index=values.index, name=values.name)
    return pd.Series(out.to_numpy(), index=values.index, name=values.name)


def _encoding_problem(raw: bytes, name: str, table: str) -> DataContractError:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lo, hi = max(0, exc.start - 12), min(len(raw), exc.end + 12)
        chunk = raw[lo:hi]
        readings = {enc: chunk.decode(enc, "replace").strip() for enc in ("cp1252", "cp850")}
        return DataContractError(
            f"file {name!r} is not UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start}); the bytes "
            f"there read as {readings['cp1252']!r} in Windows-1252 or {readings['cp850']!r} in DOS cp850",
            table=table, fix='say which: encoding = "cp1252" (or "latin-1", "cp850") in the mapping file.',
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _sniff_separator(text: str, name: str, table: str) -> str:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    fits = {}
    for sep in _SEPARATORS:
        rows = list(csv.reader(lines, delimiter=sep))
        widths = {len(r) for r in rows}
        if len(rows[0]) > 1 and len(widths) == 1:
            fits[sep] = len(rows[0])
    if len(fits) == 1:
        return next(iter(fits))
    if not fits:
        return ","  # one column, or rows of unequal width: the csv parser says which
    desc = ", ".join(f"{sep!r} gives {n} columns" for sep, n in fits.items())
    raise DataContractError(
        f"file {name!r}: the separator cannot be told from the file ({desc})", table=table,
        fix="say which: separator = \";\" (or \",\", \"\\t\", \"|\") in the mapping file's read options.",
    )


def read_table(
    path: str | Path,
    *,
    table: str | None = None,
    options: ReadOptions | None = None,
    key_columns: Iterable[str] = (),
    text_columns: Iterable[str] = (),
    keep_codes: Iterable[str] = (),
) -> pd.DataFrame:
    """Read one table; keys and codes as text, other columns as numbers where they are numbers.

    Parameters
    ----------
    options
        Read options of the mapping file (``None``: detect everything).
    key_columns, text_columns
        Names *in the file* (before renaming) to keep as text, in addition to the
        contract's :data:`TEXT_COLUMNS`.
    keep_codes
        Names *in the file* of text columns to hand over dictionary-encoded, as a pandas
        ``Categorical`` of the text (each distinct value once, rows as integer codes),
        when the file stores them so (parquet); their names are listed in
        ``frame.attrs[CODES_ATTR]``. :func:`~ips_impact.study.load_study` has them validated
        on their distinct values and decoded once, after the panel is cut to the study's
        rows: a person key repeated over 60 quarters is checked once, not 60 times.
        Other file types give text columns as usual.

    Raises
    ------
    DataContractError
        If the file is missing, of an unknown type, cannot be parsed, or its separator,
        decimal mark or encoding cannot be told.
    """
    path = Path(path)
    opts = options or ReadOptions()
    name = table or path.name.split(".")[0]
    keep_text = set(TEXT_COLUMNS) | set(key_columns) | set(text_columns)
    if not path.exists():
        raise DataContractError(f"file {str(path)!r} does not exist", table=name, fix="check the path.")
    low = path.name.lower()
    suffix = ".csv.gz" if low.endswith(".csv.gz") else path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            coded = frozenset(keep_codes) & keep_text
            frame, decoded = _read_parquet(path, keep_text, coded)
            held = sorted(c for c in coded if c in decoded and isinstance(frame[c].dtype, pd.CategoricalDtype))
            if held:
                frame.attrs[CODES_ATTR] = held
            for col in frame.columns:
                if col in decoded:
                    continue  # text in the file: already str, missing as NaN
                if col in keep_text and not isinstance(frame[col].dtype, pd.PeriodDtype):
                    if pd.api.types.is_datetime64_any_dtype(frame[col]) or col in ("period", "month"):
                        continue
                    frame[col] = _as_text(frame[col])
            return frame
        if suffix in (".xlsx", ".xlsm"):
            return _read_excel(path, name, opts, keep_text)
        if suffix in (".csv", ".csv.gz", ".tsv", ".txt"):
            raw = path.read_bytes()
            if suffix == ".csv.gz":
                import gzip

                raw = gzip.decompress(raw)
            if opts.encoding:
                text = raw.decode(opts.encoding)
            else:
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    raise _encoding_problem(raw, path.name, name) from None
            sep = opts.separator or ("\t" if suffix == ".tsv" else _sniff_separator(text, path.name, name))
            import io

            frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=_NA)
            frame.columns = [str(c).strip() for c in frame.columns]
            return _convert_text(frame, name, opts, keep_text)
    except DataContractError:
        raise
    except (OSError, ValueError, UnicodeError, pd.errors.ParserError) as exc:
        raise DataContractError(
            f"file {path.name!r} cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            table=name, fix="check that the file is valid parquet, Excel or delimited text with a header row, "
                            "and the separator / encoding options of the mapping file.",
        ) from None
    raise DataContractError(
        f"file {path.name!r} has an unknown type", table=name,
        fix=f"save the table as one of {', '.join(_SUFFIXES)}.",
    )


def _read_parquet(path: Path, keep_text: AbstractSet[str] = frozenset(),
                  keep_codes: AbstractSet[str] = frozenset()) -> tuple[pd.DataFrame, set[str]]:
    """``pd.read_parquet(path)``, with text columns decoded once per distinct value.

    Text columns are read dictionary-encoded (the text of each distinct key once, rows
    as integer codes) and expanded to the same object column ``pd.read_parquet`` gives
    (missing as ``None``), by a take of shared string objects instead of one Python
    string per row: a key repeated over 60 quarters is decoded once, not 60 times.
    Columns of ``keep_text`` get missing as NaN, as :func:`_as_text` gives; those of
    ``keep_codes`` stay ``Categorical`` (missing as code -1, decoded to NaN later). The
    names of both are returned as the second element.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    table = pq.read_table(path, read_dictionary=text, use_pandas_metadata=True)
    columns = list(table.column_names)
    meta = table.schema.pandas_metadata or {}
    index_columns = {c for c in meta.get("index_columns", []) if isinstance(c, str)}  # restored by pandas
    cats = {name: _categorical(table.column(name)) for name in text if name in columns and name not in index_columns}
    # one block per column and the Arrow buffers released as they are converted: no
    # consolidation copy of the whole table (peak: the file's table plus one column)
    frame = table.drop_columns(list(cats)).to_pandas(split_blocks=True, self_destruct=True)
    del table
    if cats:
        frame = pd.DataFrame({c: (pd.Series(cats[c], index=frame.index, name=c) if c in cats else frame[c])
                              for c in columns if c in cats or c in frame.columns}, index=frame.index, copy=False)
    decoded = set()
    for name in text:
        if name not in frame.columns:
            continue  # a text index of the writer's frame, restored as the index
        col = frame[name]
        if not isinstance(col.dtype, pd.CategoricalDtype):
            continue
        if name in keep_codes and pd.api.types.infer_dtype(col.cat.categories, skipna=False) == "string":
            decoded.add(name)
            continue
        keep = name in keep_text and name not in ("period", "month")
        # missing as NaN as _as_text gives; None as pd.read_parquet does
        frame[name] = decode_text(col, np.nan if keep else None)
        if keep:
            decoded.add(name)
    # Arrow's allocator keeps the pages of the decoded file; hand them back before pandas
    # allocates the study's frames (about 0.08 KB per row of peak memory)
    pa.default_memory_pool().release_unused()
    return frame, decoded


def _categorical(column: object) -> pd.Categorical:
    """Convert a dictionary-encoded Arrow column to one pandas ``Categorical`` (missing as code -1).

    Each row group of a parquet file has its own dictionary; the dictionaries are unified
    by one hash of their distinct values (categories in order of first appearance), and
    the rows' indices remapped by integer takes, instead of Arrow's per-chunk unification.
    """
    import pyarrow as pa

    chunks = [c for c in column.chunks if len(c)]  # type: ignore[attr-defined]
    if not chunks:
        return pd.Categorical([], categories=pd.Index([], dtype=object))
    assert isinstance(chunks[0], pa.DictionaryArray)
    # the record batches of one row group share its dictionary (the same buffers): each
    # distinct dictionary is decoded once
    slot: dict[tuple[int, ...], int] = {}
    which: list[int] = []
    dicts: list[np.ndarray] = []
    for c in chunks:
        key = (len(c.dictionary), *(b.address if b is not None else 0 for b in c.dictionary.buffers()))
        if key not in slot:
            slot[key] = len(dicts)
            dicts.append(c.dictionary.to_numpy(zero_copy_only=False))
        which.append(slot[key])
    remap, categories = pd.factorize(np.concatenate(dicts))
    starts = np.cumsum([0] + [len(d) for d in dicts])
    # each dictionary's codes, then -1 in one extra slot where its missing rows point
    tables = [np.append(remap[starts[w]:starts[w + 1]], -1).astype(np.int32) for w in range(len(dicts))]
    codes = np.empty(sum(len(c) for c in chunks), dtype=np.int32)
    pos = 0
    for c, w in zip(chunks, which):
        n_dict = len(tables[w]) - 1
        idx = c.indices
        if c.null_count:  # int32 first: the extra slot may not fit the narrow index type
            idx = idx.cast(pa.int32()).fill_null(n_dict)
        idx = idx.to_numpy()
        np.take(tables[w], idx, out=codes[pos:pos + len(c)])  # gathered straight into place
        pos += len(c)
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object), validate=False)


def _as_text(col: pd.Series) -> pd.Series:
    """Keys as text: bytes decoded, integers without '.0', missing kept missing."""
    def one(v: object) -> object:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return np.nan
        if isinstance(v, bytes):
            return v.decode("utf-8", "replace")
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    # Population-scale extracts (issue 15): a key column repeats each of its distinct
    # values per period, so the text is built once per distinct value, not per row.
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
        out = col.copy()
        miss = col.isna().to_numpy()
        if miss.any():
            out[miss] = np.nan
        return out
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) \
            and not isinstance(col.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        texts = np.array([one(v) for v in uniques] + [np.nan], dtype=object)
        return pd.Series(texts[codes], index=col.index, name=col.name)
    return col.astype(object).map(one)


def _convert_text(frame: pd.DataFrame, table: str, opts: ReadOptions, keep_text: set[str]) -> pd.DataFrame:
    out = {}
    for col in frame.columns:
        s = frame[col]
        if col in keep_text:
            out[col] = s.astype(object).where(s.notna(), np.nan)
            continue
        nums = text_to_numbers(s, decimal=opts.decimal, thousands=opts.thousands, table=table, column=col)
        out[col] = nums if nums is not None else s.astype(object).where(s.notna(), np.nan)
    return pd.DataFrame(out, index=frame.index)


def _read_excel(path: Path, table: str, opts: ReadOptions, keep_text: set[str]) -> pd.DataFrame:
    sheets = pd.ExcelFile(path).sheet_names
    sheet = opts.sheet
    if sheet is None:
        if len(sheets) > 1:
            raise DataContractError(
                f"workbook {path.name!r} has {len(sheets)} sheets and the mapping file does not say which holds "
                f"table '{table}'", table=table, examples=sheets,
                fix=f'say which: sheet = "{sheets[0]}" in the [{table}] section of the mapping file.',
            )
        sheet = 0
    elif isinstance(sheet, str) and sheet not in sheets:
        raise DataContractError(f"workbook {path.name!r} has no sheet {sheet!r}", table=table, examples=sheets,
                                fix="use one of the sheet names listed.")
    header = pd.read_excel(path, sheet_name=sheet, nrows=0).columns
    frame = pd.read_excel(path, sheet_name=sheet, dtype={c: object for c in header if c in keep_text})
    for col in frame.columns:
        if col in keep_text and not pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = _as_text(frame[col])
        elif frame[col].dtype == object:
            nums = text_to_numbers(frame[col], decimal=opts.decimal, thousands=opts.thousands,
                                   table=table, column=col)
            if nums is not None:
                frame[col] = nums
    return frame


def find_table_files(folder: str | Path, *, files: dict[str, str] | None = None) -> dict[str, Path]:
    """Find ``assignment.*``, ``panel.*`` and the optional tables in a folder.

    File names are matched without regard to case (``Assignment.CSV``). ``files``
    gives the file of a table explicitly (the ``file`` option of the mapping file).
    """
    return {name: paths[0] for name, paths in find_table_parts(folder, files=files, parts=False).items()}


#: Parquet suffixes (a table given as a folder of parts holds only these).
PARQUET_SUFFIXES = (".parquet", ".pq")
_GLOB = set("*?[")


def find_table_parts(folder: str | Path, *, files: dict[str, str] | None = None,
                     parts: bool = True) -> dict[str, list[Path]]:
    """Find the file(s) of each table: one file or, with ``parts``, a folder of parquet parts or a glob.

    As :func:`find_table_files`; with ``parts`` a table may also be a folder of that name
    holding parquet parts (``panel/part-2019.parquet``…; names starting with ``.`` or
    ``_``, like Spark's ``_SUCCESS``, are skipped) or a glob in the ``file`` option
    (``file = "lmd/part-*.parquet"``). Parts are sorted by name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataContractError(f"{str(folder)!r} is not a folder",
                                fix="pass the folder that holds assignment.* and panel.*.")
    entries = sorted(p for p in folder.iterdir() if (parts or p.is_file()) and not p.name.startswith((".", "~$")))
    found: dict[str, list[Path]] = {}
    for name in TABLE_NAMES:
        wanted = (files or {}).get(name)
        if parts and wanted is not None and (_GLOB & set(wanted) or "/" in wanted):
            matched = sorted(p for p in folder.glob(wanted) if p.is_file())
            if not matched:
                raise DataContractError(
                    f"the mapping file names {wanted!r} for table '{name}' but no file matches it",
                    table=name, examples=[p.name for p in entries][:5], fix="correct the file option.")
            found[name] = matched
            continue
        if wanted is not None:
            hits = [p for p in entries if p.name.lower() == wanted.lower()]
            if not hits:
                raise DataContractError(
                    f"the mapping file names {wanted!r} for table '{name}' but the folder has no such file",
                    table=name, examples=[p.name for p in entries][:5], fix="correct the file option.")
        else:
            hits = [p for p in entries if (p.is_file() and any(p.name.lower() == name + s for s in _SUFFIXES))
                    or (p.is_dir() and p.name.lower() == name)]
        if len(hits) > 1:
            raise DataContractError(
                f"several files hold table '{name}'", table=name,
                examples=[h.name for h in hits], fix="keep one file per table, or name it with file = \"…\".",
            )
        if hits:
            found[name] = _parts(hits[0], name) if hits[0].is_dir() else [hits[0]]
    for name in ("assignment", "panel"):
        if name not in found:
            folder_too = f" (or a folder {name}/ of parquet parts)" if parts else ""
            raise DataContractError(
                f"no file for the required table '{name}' in {str(folder)!r}", table=name,
                examples=[p.name for p in entries][:5],
                fix=f"save it as {name}.parquet or {name}.csv{folder_too} in that folder, or name it with "
                    f"file = \"…\" under [{name}] in the mapping file.",
            )
    return found


def _parts(directory: Path, table: str) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    other = [p.name for p in files if p.suffix.lower() not in PARQUET_SUFFIXES]
    if other or not files:
        raise DataContractError(
            f"folder {directory.name!r} of table '{table}' must hold parquet parts only"
            + (" and holds other files" if other else " and is empty"), table=table, examples=other[:5],
            fix="keep only the .parquet parts in that folder (a table given as parts is read by "
                "engine='duckdb'; convert text parts to parquet).")
    return files
