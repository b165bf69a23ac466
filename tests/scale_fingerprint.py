"""Fingerprints of a Study and its estimates, for the population-scale tests (issue 15).

``fingerprint(study)`` hashes every public frame (column names, dtypes and the values,
bit for bit via ``pandas.util.hash_pandas_object``), the design arrays, the ledger and
a few estimates (``itt``, ``itt_by_period``) as raw float64 bytes. The expected values
in ``tests/reference/scale_fingerprints.json`` were computed with the linkage code as it
was before the population-scale rewrite (``python tests/scale_fingerprint.py`` wrote
them), so any change of a value, a dtype, a row order or a last bit shows up.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = Path(__file__).parent / "reference" / "scale_fingerprints.json"


def frame_hash(df: pd.DataFrame | None) -> str:
    if df is None:
        return "none"
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    h.update(str(df.shape).encode())
    h.update(np.asarray(pd.util.hash_pandas_object(df, index=True), dtype=np.uint64).tobytes())
    return h.hexdigest()[:24]


def _floats(*arrays: object) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    return h.hexdigest()[:24]


def fingerprint(study: object, outcome: str = "employed", horizon: int = 4) -> dict[str, str]:
    import ips_impact as ii

    d = study.design
    out = {
        "persons": frame_hash(study.persons), "panel": frame_hash(study.panel),
        "members": frame_hash(study.members), "households": frame_hash(study.households),
        "ledger": frame_hash(study.ledger.to_frame()),
        "design": _floats(d.arm, d.stratum, d.household if d.household is not None else []),
        "frequency": str(study.frequency), "covariates": ",".join(study.covariates),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ii.itt(study, outcome, horizon=horizon)
        f = r.tidy()
        out["itt"] = _floats(f.select_dtypes("number").to_numpy())
        lo, hi = study.k_range
        ks = range(max(lo, 1), min(hi, 8) + 1)
        try:
            f = ii.itt_by_period(study, outcome, periods=ks).tidy()
            out["itt_by_period"] = _floats(f.select_dtypes("number").to_numpy())
        except ii.errors.EstimationError as e:  # tiny trials: the refusal is part of the fingerprint
            out["itt_by_period"] = f"refused: {e}"
    return out


def cases() -> dict[str, object]:
    """Small trials built through from_frames (all tables) and load_study (parquet)."""
    import ips_impact as ii
    from ips_impact.synthetic import generate

    out = {}
    for seed, n in ((1, 300), (7, 600)):
        trial = generate(n_persons=n, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[f"synthetic_n{n}_s{seed}"] = lambda t=trial: t.study()
    import tempfile

    trial = generate(n_persons=300, seed=5)
    folder = Path(tempfile.mkdtemp(prefix="ips_scale_fp_"))
    trial.write(folder)
    out["parquet_n300_s5"] = lambda folder=folder: ii.load_study(folder)
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_frames

    f = make_frames(n=40, periods=12, seed=3)
    out["conftest_frames"] = lambda f=f: ii.Study.from_frames(
        f["assignment"], f["panel"], households=f.get("households"), benefits=f.get("benefits"),
        takeup=f.get("takeup"))
    return out


def compute() -> dict[str, dict[str, str]]:
    res = {}
    for name, make in cases().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res[name] = fingerprint(make())
    return res


if __name__ == "__main__":
    REFERENCE.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(REFERENCE.read_text())
