"""A fitted analysis of the synthetic trial for the brief tests: the default plan, few draws."""

from __future__ import annotations

import warnings

import pytest

import ips_impact as ii

N_PERMUTATIONS = 100


def fitted_analysis():
    trial = ii.synthetic.generate(n_persons=1200, seed=2018)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ii.run_plan(trial.study(), ii.AnalysisPlan.default(), n_permutations=N_PERMUTATIONS,
                           seed=1, progress=False)


@pytest.fixture(scope="module")
def analysis():
    return fitted_analysis()
