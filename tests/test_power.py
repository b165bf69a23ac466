"""Minimum detectable effects (ips_impact.power)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ips_impact.errors import EstimationError
from ips_impact.power import mde, mde_from_design, mde_multiplier

REF = json.loads(
    (Path(__file__).parent / "reference" / "spillover_heterogeneity_reference.json").read_text()
)["models"]


def test_multiplier_normal_is_z975_plus_z80():
    assert mde_multiplier() == pytest.approx(1.959963984540054 + 0.8416212335729143, rel=1e-14)


def test_mde_has_the_stated_power_under_the_normal():
    # At a true effect equal to the MDE, the one-tail rejection rate is exactly `power`,
    # and the other tail adds the (tiny) probability of rejecting with the wrong sign.
    se = 0.037
    m = mde(se, alpha=0.05, power=0.8)
    z = stats.norm.ppf(0.975)
    upper = stats.norm.sf(z - m / se)
    assert upper == pytest.approx(0.8, abs=1e-12)


def test_mde_under_t_has_the_stated_power_for_the_central_approximation():
    se, df = 0.05, 12.0
    m = mde(se, df=df)
    crit = stats.t.ppf(0.975, df)
    assert stats.t.sf(crit - m / se, df) == pytest.approx(0.8, abs=1e-12)


@pytest.mark.parametrize(
    "model", ["het_sex_strata_CR2", "het_schooltype_ancova_CR2", "het_tercile_none_HC2"]
)
def test_mde_matches_r_qt_formula(model):
    entry = REF[model]
    for term, ref in entry["mde"].items():
        coef = entry["coefficients"][term]
        got = mde(coef["std_error"], df=coef["df"])
        assert got == pytest.approx(ref, rel=1e-10)


def test_mde_vectorised_and_nan_passthrough():
    out = mde(np.array([0.1, np.nan, 0.2]), df=np.array([10.0, 10.0, np.inf]))
    assert out.shape == (3,)
    assert math.isnan(out[1])
    assert out[2] == pytest.approx(0.2 * mde_multiplier(), rel=1e-12)


def test_mde_from_design_is_mde_of_difference_in_means_se():
    # Brussels, 60 per arm, control working-on-DI 29%.
    sd = math.sqrt(0.29 * 0.71)
    se = sd * math.sqrt(1 / 60 + 1 / 60)
    assert mde_from_design(60, 60, sd=sd) == pytest.approx(2.8015852181129683 * se, rel=1e-12)
    # Covariates explaining 30% of the variance shrink the MDE by sqrt(0.7).
    assert mde_from_design(60, 60, sd=sd, r2=0.3) == pytest.approx(
        mde_from_design(60, 60, sd=sd) * math.sqrt(0.7), rel=1e-12
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": 0.0},
        {"alpha": 1.5},
        {"power": 1.0},
        {"power": "0.8"},
        {"df": 0.0},
    ],
)
def test_bad_options_are_typed_errors(kwargs):
    with pytest.raises(EstimationError):
        mde(0.1, **kwargs)


def test_bad_design_inputs_are_typed_errors():
    with pytest.raises(EstimationError, match="n_treated"):
        mde_from_design(0, 10)
    with pytest.raises(EstimationError, match="r2"):
        mde_from_design(10, 10, r2=1.0)
    with pytest.raises(EstimationError, match="design_effect"):
        mde_from_design(10, 10, design_effect=0.5)
    with pytest.raises(EstimationError, match="non-negative"):
        mde(-0.1)


def test_the_power_function_and_the_power_module_are_both_reachable():
    # ii.power is the function (the public name); the module of the same name stays
    # importable: `import ips_impact.power` does not replace the function, and the
    # module's names come with `from ips_impact.power import ...` or importlib
    import importlib
    import sys

    import ips_impact
    import ips_impact.power  # noqa: F401  (must not rebind ips_impact.power)

    module = importlib.import_module("ips_impact.power")
    assert callable(ips_impact.power) and ips_impact.power is module.power
    assert sys.modules["ips_impact.power"] is module and module.__name__ == "ips_impact.power"
    from ips_impact.power import PowerResult, mde_from_design

    assert PowerResult is module.PowerResult and mde_from_design is module.mde_from_design
