"""Provenance of an analysis: what went in, hashed; when and where it ran, kept apart.

The *hashed* part holds only what determines the numbers: SHA-256 of every input file
(or, for a Study built in memory, of a canonical serialisation of its frames), of the
column-mapping file and of the plan; the versions of the package and of its numerical
dependencies; the seed and the number of randomization draws; the study's ledger.
Its own digest is :math:`\\mathrm{SHA256}` of its canonical JSON. No clock time and no
machine path enter it, so that the same data, plan and seed give the same provenance on
any machine. The *run* part (time, host, Python executable's version) is recorded
beside it and is not hashed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["file_sha256", "frame_sha256", "frames_sha256", "versions", "build_provenance", "digest"]

#: Distributions whose versions can change a number of the analysis.
DEPENDENCIES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "linearmodels",
    "lifelines",
    "pyarrow",
)

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


_KEYS = ("person_id", "index_person_id", "household_id", "k", "period", "role")


def _column_bytes(col: pd.Series) -> bytes:
    """Bytes of one column's values, with its dtype: numbers as their IEEE/int bytes."""
    dtype = col.dtype
    head = f"{col.name}\x1e{dtype}\x1e".encode()
    if isinstance(dtype, pd.PeriodDtype):
        return head + np.asarray(col.array.asi8, dtype="<i8").tobytes()
    if isinstance(dtype, np.dtype) and dtype.kind in "biufM":
        arr = col.to_numpy()
        return head + np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes()
    text = "\x1f".join("\x00NA" if v is None or (isinstance(v, float) and v != v) else str(v)
                       for v in col.astype(object).tolist())
    return head + text.encode("utf-8")


def frame_sha256(frame: pd.DataFrame) -> str:
    """Hash a frame independently of its row and column order.

    Columns are taken in name order and rows sorted (stably) by the key columns present
    (``person_id``, ``index_person_id``, ``household_id``, ``k``, ``period``, ``role``);
    each column contributes its dtype and its values' bytes.
    """
    keys = [c for c in _KEYS if c in frame.columns]
    if keys and len(frame):
        frame = frame.sort_values(keys, kind="mergesort")
    h = hashlib.sha256(f"{len(frame)}\x1d".encode())
    for name in sorted(map(str, frame.columns)):
        col = frame[name] if name in frame.columns else frame.rename(columns=str)[name]
        h.update(_column_bytes(col))
        h.update(b"\x1d")
    return h.hexdigest()


def frames_sha256(study: Any) -> dict[str, str]:
    """Hash each public frame of a Study with :func:`frame_sha256`.

    Used when the Study does not say which files it was read from (built in memory):
    ``persons``, ``panel``, ``members`` and ``households`` (when present).
    """
    out: dict[str, str] = {}
    for name in ("persons", "panel", "members", "households"):
        frame = getattr(study, name, None)
        if isinstance(frame, pd.DataFrame):
            out[name] = frame_sha256(frame)
    return out


def versions() -> dict[str, str]:
    """Versions of ips_impact, Python and the numerical dependencies."""
    import ips_impact

    out = {
        "ips_impact": str(ips_impact.__version__),
        "python": ".".join(map(str, sys.version_info[:3])),
    }
    for dist in DEPENDENCIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``content`` (keys sorted, no whitespace)."""
    blob = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def input_hashes(study: Any, inputs: Mapping[str, str | Path] | None) -> tuple[str, dict[str, str]]:
    """``(kind, {name: sha256})`` of the inputs: files if known, else the study's frames.

    ``inputs`` maps a table name to the file it was read from; without it a public
    ``study.sources`` mapping is used when the Study offers one. Names, never paths,
    enter the result.
    """
    sources = inputs if inputs is not None else getattr(study, "sources", None)
    if isinstance(sources, Mapping) and sources:
        return "files", {str(name): file_sha256(path) for name, path in sorted(sources.items())}
    return "frames", frames_sha256(study)


def build_provenance(
    study: Any,
    *,
    plan_sha256: str,
    seed: int,
    n_permutations: int,
    inputs: Mapping[str, str | Path] | None = None,
    column_map: str | Path | None = None,
    ledger: pd.DataFrame | None = None,
    exploratory: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the provenance mapping of an :class:`~ips_impact.plan.analysis.Analysis`.

    Returns
    -------
    dict
        ``inputs`` ({table: sha256}), ``input_kind`` ("files" or "frames"),
        ``column_map`` (sha256 or None), ``plan`` (sha256 of the canonical plan),
        ``versions``, ``seed``, ``n_permutations``, ``ledger`` (records),
        ``exploratory`` (the estimands run outside the plan, in plan form),
        ``digest`` (sha256 of all of these) and ``run`` (time, host, platform: not hashed).
    """
    kind, hashes = input_hashes(study, inputs)
    hashed: dict[str, Any] = {
        "inputs": hashes,
        "input_kind": kind,
        "column_map": file_sha256(column_map) if column_map is not None else None,
        "plan": plan_sha256,
        "versions": versions(),
        "seed": int(seed),
        "n_permutations": int(n_permutations),
        "ledger": (
            []
            if ledger is None
            else json.loads(ledger.to_json(orient="records", double_precision=15))
        ),
        "exploratory": list(exploratory or []),
    }
    out = dict(hashed)
    out["digest"] = digest(hashed)
    out["run"] = {
        "time_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
    }
    return out


HASHED_KEYS: tuple[str, ...] = (
    "exploratory",
    "inputs",
    "input_kind",
    "column_map",
    "plan",
    "versions",
    "seed",
    "n_permutations",
    "ledger",
)
