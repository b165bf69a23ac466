"""The power draw's shortcuts (ips_impact.synthetic.trial._draw) are generate()'s numbers, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ips_impact.errors import DataContractError
from ips_impact.synthetic import SyntheticParams, generate
from ips_impact.synthetic.trial import _draw


@pytest.mark.parametrize("n,seed,post,outcomes", [
    (1200, 3, 6, ["work_on_di"]),
    (300, 5, 10, ["earnings", "employed", "work_on_di"]),
    (77, 9, 4, ["di_benefit", "fte", "days_worked", "earnings"]),  # a region may be empty
])
def test_every_sample_effect_of_the_draw_is_the_truths(n, seed, post, outcomes):
    # power reads the sample effect through _Draw.ate (no truth table per replicate)
    p = dataclasses.replace(SyntheticParams(), pre_quarters=0, post_quarters=post)
    full = generate(n_persons=n, seed=seed, params=p, tables=("assignment", "panel"), job_details=False)
    d = _draw(n_persons=n, seed=seed, params=p, outcomes=outcomes, assignment_columns=["person_id"])
    t = full.truth
    want = t[(t["population"] == "participants") & t["outcome"].isin(outcomes)]
    assert len(want) == len(set(outcomes)) * len(d.groups) * d.ks.size
    for row in want.itertuples():  # every effect, to the bit (NaN in a group nobody is in)
        got = d.ate(row.outcome, row.k, row.group)
        assert got == row.ate or (np.isnan(got) and np.isnan(row.ate)), row
    with pytest.raises(DataContractError, match="no truth"):
        d.ate(outcomes[0], post + 1)
    with pytest.raises(DataContractError, match="no truth"):
        d.ate("employed" if "employed" not in outcomes else "fte", 0)
