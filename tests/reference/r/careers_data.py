"""Write tests/reference/data/careers_panel.csv, the data of careers.R (run once; committed).

A synthetic trial of 400 persons, quarters k = 0..20, with censoring added so that the
Aalen–Johansen and MCF estimators have something to correct: 35% of the persons lose
their last 1..16 quarters, and 3% have a one-quarter gap (their follow-up ends before it,
which careers.R reproduces by its own rule). Columns: id (1..n, the order of
study.persons), arm, stratum, age, k, employed, on_di, sep_code (missing sep_code in a
few rows, where unemployment_benefit decides).

    cd tests/reference/r && PYTHONPATH=../../.. python careers_data.py
"""

from pathlib import Path

import numpy as np

from ips_impact.synthetic import generate

trial = generate(n_persons=400, seed=11)
a = trial.assignment.sort_values("person_id").reset_index(drop=True)
ids = {p: i + 1 for i, p in enumerate(a["person_id"])}
st = trial.study()
p = st.panel
p = p[(p["k"] >= 0)].copy()
p["id"] = p["person_id"].map(ids)
rng = np.random.Generator(np.random.PCG64(5))
n = len(a)
cut = np.where(rng.random(n) < 0.35, 20 - rng.integers(1, 17, n), 99)
gap = np.where(rng.random(n) < 0.03, rng.integers(2, 18, n), -1)
keep = (p["k"].to_numpy() <= cut[p["id"].to_numpy() - 1]) & (
    p["k"].to_numpy() != gap[p["id"].to_numpy() - 1]
)
p = p[keep]
sep = p["sep_code"].astype("float")
sep[rng.random(len(p)) < 0.02] = np.nan
out = p.assign(
    sep_code=sep,
    arm=p["id"].map(dict(zip(a.index + 1, a["arm"]))),
    stratum=p["id"].map(dict(zip(a.index + 1, a["stratum"]))),
    age=p["id"].map(dict(zip(a.index + 1, a["age"]))),
)
out = out[
    ["id", "arm", "stratum", "age", "k", "employed", "on_di", "sep_code", "unemployment_benefit"]
]
target = Path(__file__).resolve().parents[1] / "data" / "careers_panel.csv"
out.sort_values(["id", "k"]).to_csv(target, index=False, float_format="%.10g")
print(target, len(out))
