"""``_itt_arm`` (the three numbers power reads) is ``itt`` without its result object: equal to the bit."""

from __future__ import annotations

import warnings

import pytest

import ips_impact as ii
from ips_impact.estimators.itt import _itt_arm
from ips_impact.synthetic import generate


@pytest.fixture(scope="module")
def study():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate(n_persons=500, seed=21).study()


@pytest.mark.parametrize("options", [
    dict(horizon=6),
    dict(horizon=4, covariates=["age", "pre_employment_share"], adjustment="lin"),
    dict(horizon=8, adjustment="none", strata=False),  # Welch's df
    dict(horizon=6, covariates=["age"], adjustment="ancova", cov_type="HC3"),
    dict(window=(4, 8), aggregate="sum"),
    dict(window=(1, 6), aggregate="stack"),  # stacked rows: CR2 by person, the arm's df only
    dict(horizon=6, cluster="household_id"),
    dict(horizon=6, subset="region == 'VL'", level=0.9),
])
@pytest.mark.parametrize("outcome", ["work_on_di", "earnings"])
def test_itt_arm_equals_itt(study, options, outcome) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ii.itt(study, outcome, **options)
        got = _itt_arm(study, outcome, **options)
    assert got == (res.estimate, res.std_error, res.p_value)


def test_estimators_read_the_persons_table_without_changing_it(study) -> None:
    """itt and itt_by_period read Study._persons_frame() (no copy): it must stay as it was."""
    import pandas as pd

    before = pd.util.hash_pandas_object(study._persons_frame(), index=True).to_numpy().copy()
    cols = list(study._persons_frame().columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ii.itt(study, "earnings", horizon=4, covariates=["age"], adjustment="lin", cluster="household_id",
               subset="region == 'VL'")
        ii.itt_by_period(study, "employed", periods=range(1, 7), covariates=["age"])
        _itt_arm(study, "employed", horizon=3, strata=False, adjustment="none")
    assert list(study._persons_frame().columns) == cols
    assert (pd.util.hash_pandas_object(study._persons_frame(), index=True).to_numpy() == before).all()
