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
import io
import json
import platform
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["file_sha256", "frames_sha256", "versions", "build_provenance", "digest"]

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


def _canonical_csv(frame: pd.DataFrame) -> bytes:
    """Serialise a frame in a form that does not depend on its row or column order.

    Columns sorted by name; rows sorted by every column's text (so that two frames with
    the same rows in another order give the same bytes); floats in ``repr`` form
    (shortest round-trip), periods and dates as text.
    """
    cols = sorted(map(str, frame.columns))
    text = frame.rename(columns=str)[cols].astype("string").fillna("\x00NA")
    text = text.sort_values(cols, kind="mergesort").reset_index(drop=True) if len(cols) else text
    buf = io.StringIO()
    text.to_csv(buf, index=False, lineterminator="\n")
    header = json.dumps({c: str(frame.rename(columns=str)[c].dtype) for c in cols}, sort_keys=True)
    return (header + "\n" + buf.getvalue()).encode("utf-8")


def frames_sha256(study: Any) -> dict[str, str]:
    """SHA-256 of the canonical serialisation of each public frame of a Study.

    Used when the Study does not say which files it was read from (built in memory):
    ``persons``, ``panel``, ``members`` and ``households`` (when present).
    """
    out: dict[str, str] = {}
    for name in ("persons", "panel", "members", "households"):
        frame = getattr(study, name, None)
        if isinstance(frame, pd.DataFrame):
            out[name] = hashlib.sha256(_canonical_csv(frame)).hexdigest()
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
) -> dict[str, Any]:
    """Build the provenance mapping of an :class:`~ips_impact.plan.analysis.Analysis`.

    Returns
    -------
    dict
        ``inputs`` ({table: sha256}), ``input_kind`` ("files" or "frames"),
        ``column_map`` (sha256 or None), ``plan`` (sha256 of the canonical plan),
        ``versions``, ``seed``, ``n_permutations``, ``ledger`` (records),
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
    "inputs",
    "input_kind",
    "column_map",
    "plan",
    "versions",
    "seed",
    "n_permutations",
    "ledger",
)
