"""AnalysisPlan: the TOML schema, every refusal (file, line, key named), stable ids, round trip."""

from __future__ import annotations

import pytest

import ips_impact as ii
from ips_impact.errors import PlanError
from ips_impact.plan.schema import derive_id

HEAD = """schema = 1
name = "t"
seed = 3
n_permutations = 99
"""

ITT = """
[[estimands]]
estimator = "itt"
outcome = "work_on_di"
horizon = 6
tag = "primary"
"""


def plan(text: str) -> ii.AnalysisPlan:
    return ii.AnalysisPlan.from_string(text, source="p.toml")


def refused(text: str, *, line: int | None, key: str, match: str) -> PlanError:
    with pytest.raises(PlanError, match=match) as info:
        plan(text)
    err = info.value
    assert err.path == "p.toml"
    assert err.line == line, (err.line, str(err))
    assert err.key == key, (err.key, str(err))
    msg = str(err)
    assert "p.toml" in msg and f"key '{key}'" in msg and "Fix:" in msg
    if line is not None:
        assert f"line {line}" in msg
    return err


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), start=1) if needle in ln)


# ---------------------------------------------------------------- the default plan


def test_default_plan_is_the_registered_analysis():
    p = ii.AnalysisPlan.default()
    assert p.seed == 2018 and p.source == "default.toml"
    primary = {e.id for e in p.estimands if e.tag == "primary"}
    assert primary == {"itt.work_on_di.k6", "itt.work_on_di.k10", "itt.di_benefit.k6", "itt.di_benefit.k10"}
    assert {e.family for e in p.estimands if e.tag == "primary"} == {"primary"}
    ids = set(p.ids)
    for needed in ("itt.employed.k6", "itt.earnings.k10", "itt.fte.k6", "itt.unemployment_benefit.k6",
                   "itt.nace.k6", "itt.permanent_contract.k6", "itt.temp_agency.k10",
                   "itt_by_period.work_on_di.k-8_20", "itt.employed.k1_20.sum",
                   "time_to_event.employed.tau20", "spell_survival.employed.h20",
                   "spillover.partner.employed.k6", "spillover.partner.earnings.k10",
                   "heterogeneity.work_on_di.by_region.k6", "heterogeneity.work_on_di.by_household_type.k6",
                   "late.work_on_di.k6"):
        assert needed in ids, needed
    assert max(e.options["periods"]["last"] for e in p.estimands if e.estimator == "itt_by_period") == 20
    # every estimand has its tag and every family its method
    assert all(e.tag in ("primary", "secondary", "exploratory") for e in p.estimands)
    assert {f.name: f.method for f in p.families}["primary"] == "holm"


def test_to_toml_round_trip_and_hash_ignores_layout():
    p = ii.AnalysisPlan.default()
    again = ii.AnalysisPlan.from_string(p.to_toml())
    assert again == p and again.sha256() == p.sha256()
    assert again.ids == p.ids
    # a comment or a reordered key does not change the plan or its hash
    text = HEAD + "# a comment\n" + ITT
    swapped = HEAD + ITT.replace('horizon = 6\ntag = "primary"', 'tag = "primary"\nhorizon = 6')
    assert plan(text).sha256() == plan(swapped).sha256() == plan(HEAD + ITT).sha256()
    assert plan(HEAD + ITT.replace("horizon = 6", "horizon = 10")).sha256() != plan(text).sha256()


def test_from_toml_reads_a_file(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(HEAD + ITT, encoding="utf-8")
    p = ii.AnalysisPlan.from_toml(f)
    assert p.source == "mine.toml" and p.ids == ("itt.work_on_di.k6",)
    with pytest.raises(PlanError, match="cannot read the plan file"):
        ii.AnalysisPlan.from_toml(tmp_path / "absent.toml")


# ---------------------------------------------------------------- stable ids


def test_ids_are_derived_from_content_and_stable():
    p = plan(HEAD + """
[defaults]
covariates = ["age"]

[[estimands]]
estimator = "itt"
outcomes = ["employed", "earnings"]
horizons = [6, 10]
tag = "secondary"

[[estimands]]
estimator = "itt"
outcome = "employed"
window = [1, 20]
aggregate = "sum"
tag = "secondary"

[[estimands]]
estimator = "spillover"
outcome = "employed"
members = ["partner", "child"]
horizon = 6
tag = "secondary"

[[estimands]]
estimator = "itt"
outcome = "employed"
horizon = 6
subset = "region == 'VL'"
label = "vl"
tag = "exploratory"

[[estimands]]
id = "my.own.id"
estimator = "late"
outcome = "work_on_di"
horizon = 6
tag = "secondary"
""")
    assert p.ids == ("itt.employed.k6", "itt.employed.k10", "itt.earnings.k6", "itt.earnings.k10",
                     "itt.employed.k1_20.sum", "spillover.partner+child.employed.k6",
                     "itt.employed.k6.vl", "my.own.id")
    assert p.estimand("itt.employed.k6").options["covariates"] == ("age",)  # the default applied
    assert derive_id("time_to_event", "employed", {"tau": 20.0}, None) == "time_to_event.employed.tau20"
    assert derive_id("heterogeneity", "y", {"by": "region", "horizon": 6}, None) == "heterogeneity.y.by_region.k6"


def test_kwargs_are_what_the_estimators_take():
    p = plan(HEAD + """
[[estimands]]
estimator = "itt_by_period"
outcome = "employed"
periods = { first = -2, last = 4 }
covariates = ["age"]
tag = "secondary"

[[estimands]]
estimator = "itt"
outcome = "employed"
window = [1, 4]
tag = "secondary"
""")
    kw = p.estimands[0].kwargs()
    assert kw["periods"] == range(-2, 5) and kw["covariates"] == ("age",)
    assert p.estimands[1].kwargs()["window"] == (1, 4)


# ---------------------------------------------------------------- refusals


def test_invalid_toml_names_the_line():
    text = HEAD + "[[estimands]]\nestimator = itt\n"
    with pytest.raises(PlanError, match="not valid TOML") as info:
        plan(text)
    assert info.value.line == line_of(text, "estimator = itt")
    assert "p.toml, line" in str(info.value)


def test_unknown_top_level_key():
    text = HEAD + "n_permutation = 5\n" + ITT
    refused(text, line=line_of(text, "n_permutation ="), key="n_permutation", match="unknown key")


def test_unknown_estimand_key_names_the_estimator_options():
    text = HEAD + ITT + "horizn = 4\n"
    err = refused(text, line=line_of(text, "horizn"), key="estimands[0].horizn", match="not an option of itt")
    assert "covariates" in str(err)


def test_option_of_another_estimator_says_whose_it_is():
    text = HEAD + ITT + 'members = "partner"\n'
    refused(text, line=line_of(text, "members"), key="estimands[0].members", match="option of spillover")


def test_unknown_estimator_and_tag():
    text = HEAD + ITT.replace('"itt"', '"ols"')
    refused(text, line=line_of(text, '"ols"'), key="estimands[0].estimator", match="unknown estimator")
    text = HEAD + ITT.replace('"primary"', '"main"')
    refused(text, line=line_of(text, '"main"'), key="estimands[0].tag", match="tagged")


def test_errors_point_into_the_right_block():
    text = HEAD + ITT + ITT.replace("horizon = 6", "horizon = 6\nwindow = [1, 4]")
    refused(text, line=line_of(text, "window ="), key="estimands[1].window", match="horizon or a window")


def test_duplicate_ids_refused():
    text = HEAD + ITT + ITT
    err = refused(text, line=text.splitlines().index("[[estimands]]", 6) + 1, key="estimands[1]",
                  match="used twice")
    assert "itt.work_on_di.k6" in str(err)


def test_impossible_combinations():
    base = HEAD + "\n[[estimands]]\n"
    cases = [
        ('estimator = "itt"\noutcome = "y"\ntag = "primary"\n', "estimands[0]", "needs a horizon or a window", None),
        ('estimator = "itt"\noutcome = "y"\nhorizon = 6\naggregate = "sum"\ntag = "primary"\n',
         "estimands[0].aggregate", "applies to a window", "aggregate ="),
        ('estimator = "itt"\noutcome = "y"\nhorizon = 6\ncluster = "site"\ncov_type = "HC2"\ntag = "primary"\n',
         "estimands[0].cov_type", "ignores the clusters", "cov_type ="),
        ('estimator = "itt"\noutcome = "y"\nhorizon = 6\nadjustment = "lin"\ntag = "primary"\n',
         "estimands[0].adjustment", "Lin", "adjustment ="),
        ('estimator = "itt_by_period"\noutcome = "y"\ntag = "secondary"\n', "estimands[0]", "needs 'periods'", None),
        ('estimator = "spell_survival"\noutcome = "employed"\ntag = "secondary"\n', "estimands[0]",
         "needs a horizon", None),
        ('estimator = "time_to_event"\noutcome = "employed"\nhorizon = 8\ntau = 12\ntag = "secondary"\n',
         "estimands[0].tau", "beyond the horizon", "tau ="),
        ('estimator = "itt"\noutcome = "y"\nwindow = [5, 1]\ntag = "primary"\n', "estimands[0].window",
         "a ≤ b", "window ="),
        ('estimator = "itt"\noutcome = "y"\nhorizons = [6]\nhorizon = 6\ntag = "primary"\n',
         "estimands[0].horizons", "not both", "horizons ="),
        ('estimator = "itt"\ntag = "primary"\nhorizon = 6\n', "estimands[0]", "names no outcome", None),
        ('estimator = "itt"\noutcome = "y"\nsubgroups = ["region"]\nhorizon = 6\ntag = "primary"\n',
         "estimands[0].subgroups", "belong to heterogeneity", "subgroups ="),
        ('id = "x"\nestimator = "itt"\noutcomes = ["a", "b"]\nhorizon = 6\ntag = "primary"\n',
         "estimands[0].id", "one id for 2 estimands", "id ="),
        ('estimator = "time_to_event"\noutcome = "employed"\ntau = -1\ntag = "secondary"\n',
         "estimands[0].tau", "positive", "tau ="),
    ]
    for body, key, match, needle in cases:
        text = base + body
        line = line_of(text, needle) if needle else line_of(text, "[[estimands]]")
        refused(text, line=line, key=key, match=match)


def test_exploratory_estimand_in_a_primary_family_refused():
    text = HEAD + """
[families.primary]
method = "holm"
""" + ITT + 'family = "primary"\n' + ITT.replace("horizon = 6", "horizon = 10").replace(
        '"primary"', '"exploratory"') + 'family = "primary"\n'
    err = refused(text, line=len(text.splitlines()), key="estimands[1].family", match="exploratory estimand")
    assert "itt.work_on_di.k10" in str(err)


def test_family_errors():
    fam = '\n[families.f]\nmethod = "holm"\n'
    # undeclared family
    text = HEAD + ITT + 'family = "g"\n'
    refused(text, line=line_of(text, 'family = "g"'), key="estimands[0].family", match="not declared")
    # unknown method
    text = HEAD + fam.replace("holm", "fdr") + ITT + 'family = "f"\n'
    refused(text, line=line_of(text, '"fdr"'), key="families.f.method", match="unknown multiple-testing")
    # empty family
    text = HEAD + fam + ITT
    refused(text, line=line_of(text, "[families.f]"), key="families.f", match="holds no estimand")
    # unknown key in a family
    text = HEAD + fam + "alpha = 0.05\n" + ITT + 'family = "f"\n'
    refused(text, line=line_of(text, "alpha"), key="families.f.alpha", match="unknown key")
    # a pvalue for a resampling method
    text = HEAD + '\n[families.f]\nmethod = "romano-wolf"\npvalue = "p_value"\n' + ITT + 'family = "f"\n'
    refused(text, line=line_of(text, "pvalue"), key="families.f.pvalue", match="re-draws the assignment")
    # an estimator without a randomization test in a family adjusted on randomization draws
    text = HEAD + fam + """
[[estimands]]
estimator = "spell_survival"
outcome = "employed"
horizon = 12
tag = "secondary"
family = "f"
"""
    refused(text, line=line_of(text, 'family = "f"'), key="estimands[0].family", match="no randomization test")
    # ... which is fine on model-based p-values
    ok = plan(text.replace('method = "holm"', 'method = "holm"\npvalue = "p_value"'))
    assert ok.family("f").pvalue == "p_value"
    # resampling without draws
    text = HEAD.replace("n_permutations = 99", "n_permutations = 0") + fam.replace("holm", "westfall-young") \
        + ITT + 'family = "f"\n'
    refused(text, line=line_of(text, "westfall-young"), key="families.f.method", match="n_permutations = 0")


def test_top_level_values_checked():
    refused(HEAD.replace("seed = 3", "seed = -1") + ITT, line=3, key="seed", match="integer")
    refused(HEAD.replace("seed = 3\n", "") + ITT, line=None, key="<plan>", match="no 'seed'")
    refused(HEAD.replace("schema = 1", "schema = 2") + ITT, line=1, key="schema", match="not supported")
    refused(HEAD, line=None, key="estimands", match="lists no estimand")
    text = HEAD + "[defaults]\nbandwidth = 3\n" + ITT
    refused(text, line=line_of(text, "bandwidth"), key="defaults.bandwidth", match="option of no estimator")
    text = HEAD + '[defaults]\ncovariates = "age"\n' + ITT
    refused(text, line=line_of(text, "covariates"), key="defaults.covariates", match="list of names")


def test_from_dict_errors_name_the_source_without_a_line():
    with pytest.raises(PlanError, match="<dict>, key 'estimands\\[0\\].tag'") as info:
        ii.AnalysisPlan.from_dict({"seed": 1, "estimands": [{"estimator": "itt", "outcome": "y", "horizon": 1}]})
    assert info.value.line is None


def test_estimands_added_later_get_the_defaults():
    p = plan(HEAD + '[defaults]\ncovariates = ["age", "female"]\n' + ITT)
    more = p.with_estimands([{"estimator": "itt", "outcome": "employed", "horizon": 6, "tag": "secondary"},
                             {"estimator": "itt", "outcome": "fte", "horizon": 6, "covariates": [],
                              "tag": "secondary"}])
    assert more.estimand("itt.employed.k6").options["covariates"] == ("age", "female")
    assert more.estimand("itt.fte.k6").options["covariates"] == ()
    assert more.estimand("itt.work_on_di.k6") == p.estimand("itt.work_on_di.k6")
    assert ii.AnalysisPlan.from_string(p.to_toml()) == p
