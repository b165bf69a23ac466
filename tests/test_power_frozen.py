"""Power studies give today's numbers, bit for bit, after any speed-up of their path.

The digests were computed before the speed-ups of issue 15's power benchmark (commit
8f1c778): every replicate's estimate, standard error, p-value and true effect, the curve
and the MDEs. A change that alters one bit of one replicate (a random stream consumed
differently, a sum taken in another order, a pandas dtype) changes a digest.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

import ips_impact as ii


def digest(df: pd.DataFrame) -> str:
    raw = (pd.util.hash_pandas_object(df, index=True).values.tobytes()
           + repr(list(df.columns)).encode() + repr(list(df.dtypes.astype(str))).encode())
    return hashlib.sha256(raw).hexdigest()[:16]


STUDIES = {
    "itt": dict(estimand="itt", outcome="work_on_di", horizon=6, sample_sizes=[300, 1200],
                n_replicates=12, seed=1),
    "itt_covariates": dict(estimand="itt", outcome="earnings", horizon=4, sample_sizes=[300],
                           n_replicates=6, seed=3, effect_scales=[0.0, 1.0],
                           covariates=["age", "female", "pre_employment_share", "pre_earnings"]),
    "family": dict(estimand="family", family=[("work_on_di", 6), ("employed", 4), ("earnings", 6)],
                   sample_sizes=[400], n_replicates=6, seed=2),
    "rmst": dict(estimand="rmst", outcome="employed", horizon=6, sample_sizes=[300],
                 n_replicates=4, seed=4),
    "spillover": dict(estimand="spillover", outcome="employed", horizon=4, sample_sizes=[400],
                      n_replicates=4, seed=5),
}

FROZEN = {
    "family": {"replicates": "f36e1e50c2383a51", "curve": "5264665f554256b8", "mde": "bced0b9096b9aafc"},
    "itt": {"replicates": "4684a94aeb5bcf27", "curve": "6dbc6a78fc40ab58", "mde": "683a47c7c6dd7d84"},
    "itt_covariates": {"replicates": "7c507c85f5d730df", "curve": "58ca96011eeb57a1", "mde": "281114937fc00274"},
    "rmst": {"replicates": "8b4931c88b6f71d0", "curve": "7079fb857f1d50d9", "mde": "b75f7dcdb77a336a"},
    "spillover": {"replicates": "ba32c6563bd14414", "curve": "3620ef98bfb136a6", "mde": "5720f01eb842cc2b"},
}


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_power_results_are_todays_bit_for_bit(name):
    kw = dict(STUDIES[name])
    res = ii.power(kw.pop("estimand"), backend="serial", **kw)
    got = {f: digest(getattr(res, f)) for f in ("replicates", "curve", "mde")}
    assert res.replicates["estimate"].notna().all()  # no refused fit hides a change
    assert got == FROZEN[name]
