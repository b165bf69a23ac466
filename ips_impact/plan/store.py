"""Save an Analysis to a folder atomically, byte for byte the same every time; load it back.

Layout of a saved analysis::

    DIR/
      manifest.json        format, plan name, entries (id, tag, family, estimator, outcome,
                           options, reason, notes, warnings, seed, result file), provenance
                           (hashed part and digest), study summary, SHA-256 of every file
      plan.toml            the plan in canonical form
      tidy.parquet         Analysis.tidy(): every row, with estimand_id, tag, family,
                           ri_p_value, adj_p_value (``horizon`` as text: "6", "1:20")
      results/<id>.json    one per filled estimand: every field of the result (spec,
                           warnings, ledger, coefficient tables, Kaplan–Meier curves,
                           effect paths, subgroup rows…), typed, so it rebuilds exactly
      run.json             when and where it ran (time, host): the only file that differs
                           between two runs of the same data, plan and seed

Atomicity: everything is written into a temporary folder beside ``DIR``, which is then
renamed into place (the previous ``DIR``, if any, is first renamed aside and removed
only after the new one is in place). A failure while writing leaves the previous
folder untouched and no partial folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ips_impact.errors import PlanError
from ips_impact.plan.analysis import Analysis, Entry
from ips_impact.plan.schema import AnalysisPlan
from ips_impact.plan.serialize import decode, dumps, encode, result_from_dict, result_to_dict

__all__ = ["save_analysis", "load_analysis", "read_tidy", "MANIFEST", "FORMAT"]

FORMAT = 1
MANIFEST = "manifest.json"
RUN_FILE = "run.json"
TIDY_FILE = "tidy.parquet"
PLAN_FILE = "plan.toml"
RESULTS_DIR = "results"


def _write_file(path: Path, data: bytes) -> None:
    """Write one file of a saved analysis (one function, so that a test can make it fail)."""
    with open(path, "wb") as fh:
        fh.write(data)


def _tidy_table(tidy: pd.DataFrame) -> Any:
    """Convert the tidy frame to an Arrow table with a fixed schema and no pandas metadata.

    ``horizon`` mixes event times, window labels and None, so it is stored as text.
    """
    import pyarrow as pa  # imported here: ``import ips_impact`` does not need it
    arrays, fields = [], []
    for col in tidy.columns:
        s = tidy[col]
        if col == "horizon":
            vals = [
                None
                if v is None or (isinstance(v, float) and v != v)
                else (str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v))
                for v in s.tolist()
            ]
            arr, typ = pa.array(vals, type=pa.string()), pa.string()
        elif pd.api.types.is_bool_dtype(s):
            arr, typ = pa.array(s.tolist(), type=pa.bool_()), pa.bool_()
        elif pd.api.types.is_integer_dtype(s):
            arr, typ = pa.array(s.astype("int64").tolist(), type=pa.int64()), pa.int64()
        elif pd.api.types.is_float_dtype(s):
            arr, typ = pa.array(s.astype("float64").to_numpy(), type=pa.float64()), pa.float64()
        else:
            vals = [
                None if v is None or (isinstance(v, float) and v != v) else str(v)
                for v in s.tolist()
            ]
            arr, typ = pa.array(vals, type=pa.string()), pa.string()
        arrays.append(arr)
        fields.append(pa.field(str(col), typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _parquet_bytes(tidy: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    # One row group, fixed compression, no schema metadata: the bytes depend on the values only.
    pq.write_table(
        _tidy_table(tidy),
        sink,
        row_group_size=max(len(tidy), 1),
        compression="zstd",
        compression_level=3,
        use_dictionary=False,
        write_statistics=True,
        store_schema=False,
    )
    return sink.getvalue().to_pybytes()


def _safe_name(id: str) -> str:
    return id.replace("/", "_") + ".json"


def _entry_record(e: Entry, file: str | None) -> dict[str, Any]:
    return {
        "id": e.id,
        "tag": e.tag,
        "family": e.family,
        "estimator": e.estimator,
        "outcome": e.outcome,
        "options": encode(dict(e.options)),
        "reason": e.reason,
        "notes": list(e.notes),
        "warnings": list(e.warnings),
        "seed": e.seed,
        "result": file,
    }


def _files_of(analysis: Analysis) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    files[PLAN_FILE] = analysis.plan.to_toml().encode("utf-8")
    files[TIDY_FILE] = _parquet_bytes(analysis.tidy())
    records = []
    for e in analysis.entries:
        name = None
        if e.result is not None:
            name = f"{RESULTS_DIR}/{_safe_name(e.id)}"
            files[name] = dumps(result_to_dict(e.result)).encode("utf-8")
        records.append(_entry_record(e, name))
    prov = {k: v for k, v in analysis.provenance.items() if k != "run"}
    manifest = {
        "format": FORMAT,
        "kind": "ips_impact.Analysis",
        "plan": {"name": analysis.plan.name, "sha256": analysis.plan.sha256()},
        "provenance": encode(_plain(prov)),
        "study_info": encode(dict(analysis.study_info)),
        "entries": records,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[MANIFEST] = dumps(manifest).encode("utf-8")
    files[RUN_FILE] = dumps(_plain(analysis.provenance.get("run", {}))).encode("utf-8")
    return files


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_analysis(analysis: Analysis, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``analysis`` to the folder ``path`` atomically (see the module docstring).

    Parameters
    ----------
    analysis : Analysis
    path : folder to create or replace
    overwrite : bool
        Replace an existing saved analysis (default). A folder that exists and is not a
        saved analysis (no ``manifest.json``, not empty) is never replaced.

    Returns
    -------
    Path
        The folder.
    """
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise PlanError(
                f"{str(target)!r} exists and is not a folder",
                fix="save the analysis to a new folder",
            )
        if not overwrite:
            raise PlanError(
                f"{str(target)!r} exists", fix="pass overwrite=True or choose another folder"
            )
        if not (target / MANIFEST).is_file() and any(target.iterdir()):
            raise PlanError(
                f"{str(target)!r} is a folder that holds something other than a saved analysis",
                fix="save the analysis to a new or empty folder (nothing is replaced)",
            )
    files = _files_of(analysis)
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    try:
        os.chmod(tmp, 0o755)
        (tmp / RESULTS_DIR).mkdir()
        for name, data in files.items():
            _write_file(tmp / name, data)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(old, target)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)
    return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(
            f"{str(path)!r} is missing", fix="pass a folder written by Analysis.save()"
        ) from None
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"{str(path)!r} is not valid JSON ({exc})", fix="save the analysis again"
        ) from None


def load_analysis(path: str | Path, *, verify: bool = True) -> Analysis:
    """Read an analysis saved by :meth:`Analysis.save`; no microdata needed.

    Every result is rebuilt (same ``tidy()``, ``summary()``, ``plot()``). With
    ``verify`` (default) the SHA-256 of every file is checked against the manifest, so
    that an edited or truncated file is refused rather than read.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise PlanError(
            f"{str(folder)!r} is not a folder", fix="pass a folder written by Analysis.save()"
        )
    manifest = _read_json(folder / MANIFEST)
    if manifest.get("kind") != "ips_impact.Analysis" or manifest.get("format") != FORMAT:
        raise PlanError(
            f"{str(folder / MANIFEST)!r} is not a manifest of format {FORMAT}",
            fix="load it with the version of ips_impact that saved it",
        )
    if verify:
        for name, sha in manifest["files"].items():
            f = folder / name
            if not f.is_file():
                raise PlanError(
                    f"saved analysis {str(folder)!r} lacks the file {name}",
                    fix="save the analysis again (a copy may be incomplete)",
                )
            got = hashlib.sha256(f.read_bytes()).hexdigest()
            if got != sha:
                raise PlanError(
                    f"file {name} of {str(folder)!r} differs from its manifest (SHA-256)",
                    fix="save the analysis again; a saved analysis is not edited by hand",
                )
    plan = AnalysisPlan.from_string(
        (folder / PLAN_FILE).read_text(encoding="utf-8"), source=f"{folder.name}/{PLAN_FILE}"
    )
    entries = []
    for rec in manifest["entries"]:
        result = None
        if rec["result"] is not None:
            result = result_from_dict(_read_json(folder / rec["result"]))
        entries.append(
            Entry(
                id=rec["id"],
                tag=rec["tag"],
                family=rec["family"],
                estimator=rec["estimator"],
                outcome=rec["outcome"],
                options=decode(rec["options"]),
                result=result,
                reason=rec["reason"],
                notes=tuple(rec["notes"]),
                warnings=tuple(rec["warnings"]),
                seed=rec["seed"],
            )
        )
    provenance = decode(manifest["provenance"])
    run = folder / RUN_FILE
    if run.is_file():
        provenance["run"] = _read_json(run)
    return Analysis(
        plan=plan,
        entries=tuple(entries),
        provenance=provenance,
        study_info=decode(manifest["study_info"]),
    )


def read_tidy(path: str | Path) -> pd.DataFrame:
    """Read the tidy parquet of a saved analysis (``horizon`` as text), results not rebuilt."""
    import pyarrow.parquet as pq

    f = Path(path) / TIDY_FILE
    if not f.is_file():
        raise PlanError(f"{str(f)!r} is missing", fix="pass a folder written by Analysis.save()")
    return pq.read_table(f).to_pandas()
