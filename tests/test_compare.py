"""Tests of compare() / ComparisonTable: the numbers land in the right cells."""

from __future__ import annotations

import pytest

from ips_impact.errors import EstimationError
from ips_impact.results import (
    BoundsResult,
    DynamicEffectResult,
    EffectResult,
    compare,
    with_adjusted_pvalues,
    with_ri,
)


def _work():
    return EffectResult(outcome="work_on_di", estimate=0.095, std_error=0.03, df=590, nobs=600,
                        n_treated=300, n_control=300, control_mean=0.29, horizon=6,
                        spec={"cov_type": "HC2"})


def _benefit():
    # z = 110/80 = 1.375, p = 0.169 -> no star
    return EffectResult(outcome="di_benefit", estimate=-110.0, std_error=80.0, df=None, nobs=580,
                        n_treated=290, n_control=290, control_mean=1160.0, horizon=10,
                        term="ips_started", estimand="late", spec={"cov_type": "CR2"})


def test_cells_hold_each_models_numbers():
    t = compare({"Work": _work(), "Benefit": _benefit()})
    f = t.to_frame()
    assert list(f.columns) == ["Work", "Benefit"]
    assert f.loc[("arm (itt)", "estimate"), "Work"] == "0.095"
    assert f.loc[("arm (itt)", "std_error"), "Work"] == "(0.030)"
    assert f.loc[("arm (itt)", "estimate"), "Benefit"] == ""
    assert f.loc[("ips_started (late)", "estimate"), "Benefit"] == "-110.000"
    assert f.loc[("ips_started (late)", "std_error"), "Benefit"] == "(80.000)"
    assert f.loc[("Observations", "footer"), "Work"] == "600"
    assert f.loc[("Observations", "footer"), "Benefit"] == "580"
    assert f.loc[("Control mean", "footer"), "Benefit"] == "1160.000"
    assert f.loc[("Horizon", "footer"), "Work"] == "6"
    assert f.loc[("Standard errors", "footer"), "Benefit"] == "CR2"
    assert f.loc[("Outcome", "footer"), "Work"] == "work_on_di"
    # numbers behind the table
    d = t.tidy()
    assert list(d["model"]) == ["Work", "Benefit"]
    assert d.loc[1, "estimate"] == -110.0


def test_stars_follow_the_chosen_pvalue_and_levels():
    w = _work()  # t = 3.17, p = 0.0016 -> ***
    t = compare([w, _benefit()], stars=True)
    f = t.to_frame()
    assert list(f.columns) == ["(1)", "(2)"]
    assert f.loc[("arm (itt)", "estimate"), "(1)"] == "0.095***"
    assert f.loc[("ips_started (late)", "estimate"), "(2)"] == "-110.000"
    assert "* p < 0.1, ** p < 0.05, *** p < 0.01; stars from the model-based p-value." in t.notes
    # stars from randomization p-values: 0.04 -> two stars
    t2 = compare([with_ri(w, 0.04)], stars=True, pvalue="ri_p_value", show=("std_error", "ri_p_value"))
    f2 = t2.to_frame()
    assert f2.loc[("arm (itt)", "estimate"), "(1)"] == "0.095**"
    assert f2.loc[("arm (itt)", "ri_p_value"), "(1)"] == "RI p = 0.040"
    assert t2.notes[-1].endswith("stars from the randomization p-value.")
    # stars follow the p-value shown when none is named
    t3 = compare([with_ri(w, 0.04)], stars=True, show=("std_error", "ri_p_value"))
    assert t3.to_frame().loc[("arm (itt)", "estimate"), "(1)"] == "0.095**"
    with pytest.raises(EstimationError, match="ri_p_value"):
        compare([w], stars=True, pvalue="ri_p_value")


def test_conf_int_line_and_digits():
    w = _work()
    t = compare([w], show=("std_error", "conf_int"), digits=4)
    lo, hi = w.conf_int()
    assert t.to_frame().loc[("arm (itt)", "conf_int"), "(1)"] == f"[{lo:.4f}, {hi:.4f}]"
    assert "95% confidence intervals in brackets." in t.notes


def test_dynamic_and_bounds_rows_are_keyed():
    effects = tuple(EffectResult(outcome="y", estimate=0.01 * k, std_error=0.02, df=100, nobs=100,
                                 n_treated=50, n_control=50, horizon=k) for k in (2, 4))
    dyn = DynamicEffectResult(outcome="y", effects=effects)
    b = BoundsResult(outcome="earnings", selection="employed", lower=-100.0, upper=300.0,
                     se_lower=50.0, se_upper=60.0, trim_share=0.2, trimmed_arm="treated",
                     share_selected_treated=0.4, share_selected_control=0.32, nobs=600,
                     n_treated=300, n_control=300, n_selected_treated=120, n_selected_control=96)
    f = compare([dyn, b]).to_frame()
    assert f.loc[("arm (itt), k=4", "estimate"), "(1)"] == "0.040"
    assert f.loc[("arm (lee_upper)", "estimate"), "(2)"] == "300.000"
    assert f.loc[("arm (lee_lower)", "std_error"), "(2)"] == "(50.000)"
    assert f.loc[("Horizon", "footer"), "(1)"] == "2..4"


def test_markdown_latex_html_are_deterministic_and_complete():
    t = compare({"Work": _work(), "Benefit": _benefit()}, labels={"arm": "Offered IPS"},
                title="Main effects")
    md = t.to_markdown()
    assert md == compare({"Work": _work(), "Benefit": _benefit()}, labels={"arm": "Offered IPS"},
                         title="Main effects").to_markdown()
    lines = md.splitlines()
    assert lines[:3] == ["**Main effects**", "", "|  | Work | Benefit |"]
    assert "| Offered IPS (ITT) | 0.095 |  |" in lines
    assert "|  | (0.030) |  |" in lines
    assert "| Observations | 600 | 580 |" in lines
    tex = t.to_latex()
    assert "Offered IPS (ITT) & 0.095 &  \\\\" in tex
    assert "ips\\_started (LATE) &  & -110.000 \\\\" in tex
    assert "\\midrule\nOutcome & work\\_on\\_di & di\\_benefit \\\\" in tex
    assert tex.count("\\toprule") == 1 and tex.rstrip().splitlines()[-1].startswith("\\par")
    h = t.to_html()
    assert "<caption>Main effects</caption>" in h
    assert "<tr><th>Offered IPS (ITT)</th><td>0.095</td><td></td></tr>" in h
    assert "<tfoot>" in h and "<tr><th>Observations</th><td>600</td><td>580</td></tr>" in h


def test_docx_round_trip(tmp_path):
    import docx  # the docx extra is part of the dev environment (make install)

    t = compare({"Work": _work(), "Benefit": _benefit()})
    path = t.to_docx(tmp_path / "table.docx")
    doc = docx.Document(str(path))
    table = doc.tables[0]
    rows = [[c.text for c in r.cells] for r in table.rows]
    assert rows[0] == ["", "Work", "Benefit"]
    assert rows[1] == ["IPS offer (ITT)", "0.095", ""]
    assert table.style.name == "Table Grid"  # borders
    assert rows[2] == ["", "(0.030)", ""]
    assert ["Observations", "600", "580"] in rows


def test_bad_options_are_typed_errors():
    with pytest.raises(EstimationError, match="show must be one of"):
        compare([_work()], show=("se",))
    with pytest.raises(EstimationError, match="pvalue must be one of"):
        compare([_work()], pvalue="q")
    with pytest.raises(EstimationError, match="at least one result"):
        compare([])
    with pytest.raises(EstimationError, match="2 names for 1 results"):
        compare([_work()], names=["a", "b"])
    with pytest.raises(EstimationError, match="tidy"):
        compare([object()])


def test_table_is_frozen():
    t = compare([_work()])
    with pytest.raises(ValueError):
        t.cells.iloc[0, 0] = "x"
    adj = with_adjusted_pvalues(_work(), 0.2, family="primary")
    f = compare([adj], show=("adj_p_value",)).to_frame()
    assert f.loc[("arm (itt)", "adj_p_value"), "(1)"] == "adj. p = 0.200"


def test_docx_missing_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "docx", None)  # makes `import docx` fail
    with pytest.raises(ImportError, match=r"pip install ips_impact\[docx\]"):
        compare([_work()]).to_docx(tmp_path / "t.docx")


def test_rows_without_estimate_and_mixed_horizons():
    from ips_impact.results import ResultBase, make_row, result_dataclass

    @result_dataclass
    class JointTest(ResultBase):
        """A result whose only row is a joint test: no estimate, a p-value."""

        def _tidy_rows(self):
            row = make_row(outcome="work_on_di", term="joint:region", estimand="heterogeneity_test",
                           estimate=float("nan"), std_error=float("nan"), nobs=600, n_treated=300,
                           n_control=300, p_value=0.047)
            return [row]

    b = BoundsResult(outcome="earnings", selection="employed", lower=-1.0, upper=2.0, se_lower=0.5,
                     se_upper=0.5, trim_share=0.1, trimmed_arm="treated", share_selected_treated=0.4,
                     share_selected_control=0.36, nobs=600, n_treated=300, n_control=300,
                     n_selected_treated=120, n_selected_control=108)
    f = compare([_work(), JointTest(), b], stars=True, show=("std_error", "conf_int")).to_frame()
    assert f.loc[("joint:region (heterogeneity_test)", "estimate"), "(2)"] == "p = 0.047**"
    assert f.loc[("joint:region (heterogeneity_test)", "std_error"), "(2)"] == ""
    assert f.loc[("joint:region (heterogeneity_test)", "conf_int"), "(2)"] == ""
    # an int horizon stays an int next to results without one
    assert f.loc[("Horizon", "footer"), "(1)"] == "6"
    assert f.loc[("Horizon", "footer"), "(2)"] == "" and f.loc[("Horizon", "footer"), "(3)"] == ""


def test_latex_notes_render_comparison_signs():
    tex = compare([_work()], stars=True).to_latex()
    assert "* p $<$ 0.1, ** p $<$ 0.05, *** p $<$ 0.01; stars from the model-based p-value." in tex


def test_keep_and_drop_rows_by_pattern():
    effects = tuple(EffectResult(outcome="y", estimate=0.01 * k, std_error=0.02, df=100, nobs=100,
                                 n_treated=50, n_control=50, horizon=k) for k in range(-2, 9))
    dyn = DynamicEffectResult(outcome="y", effects=effects)
    t = compare([dyn, _work()], keep=[r"k=(2|6)$", r"^arm \(itt\)$"])
    rows = [r for r, line in t.to_frame().index if line == "estimate"]
    assert rows == ["arm (itt), k=2", "arm (itt), k=6", "arm (itt)"]
    f = t.to_frame()
    assert f.loc[("arm (itt), k=6", "estimate"), "(1)"] == "0.060"
    assert f.loc[("Horizon", "footer"), "(1)"] == "2..6"  # the horizons shown, not all
    t2 = compare([dyn], drop=[r"k=-"])
    assert [r for r, line in t2.to_frame().index if line == "estimate"][0] == "arm (itt), k=0"
    with pytest.raises(EstimationError, match="leave no row"):
        compare([dyn], keep=["nothing"])
    with pytest.raises(EstimationError, match="not a valid regular expression"):
        compare([dyn], keep=["("])


# ------------------------------------------------------------ results of the estimators


@pytest.fixture(scope="module")
def trial_study():
    import ips_impact as ii

    return ii.synthetic.generate(n_persons=1200, seed=2018).study()


def _estimate_rows(table):
    return [r for r, line in table.to_frame().index if line == "estimate"]


def _num(x, digits=3):
    """The cell text compare() writes for x (it prints -0.000 as 0.000)."""
    s = f"{x:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def test_categorical_result_has_one_row_per_level(trial_study):
    import ips_impact as ii

    r = ii.itt(trial_study, "nace", horizon=6)
    assert isinstance(r, ii.CategoricalEffectResult) and len(r.levels) > 3
    t = compare({"Sector": r}, show=("std_error", "conf_int", "control_mean"), digits=4)
    f = t.to_frame()
    assert _estimate_rows(t) == [f"arm (itt), nace={lv}" for lv in r.levels]
    for lv in r.levels:
        e = r.effect_at(lv)
        row = f"arm (itt), nace={lv}"
        assert f.loc[(row, "estimate"), "Sector"] == _num(e.estimate, 4)
        assert f.loc[(row, "std_error"), "Sector"] == f"({_num(e.std_error, 4)})"
        assert f.loc[(row, "conf_int"), "Sector"] == f"[{_num(e.conf_low, 4)}, {_num(e.conf_high, 4)}]"
        assert f.loc[(row, "control_mean"), "Sector"] == f"control mean {_num(e.control_mean, 4)}"
    # the levels really differ, so a table repeating the first level would fail above
    assert len({f.loc[(f"arm (itt), nace={lv}", "estimate"), "Sector"] for lv in r.levels}) > 3
    assert f.loc[("Outcome", "footer"), "Sector"] == "nace"
    assert f.loc[("Horizon", "footer"), "Sector"] == "6"
    assert f.loc[("Observations", "footer"), "Sector"] == str(r.effects[0].nobs) == "1200"
    # one control mean per level, none of them the model's: blank, and the note says why
    assert f.loc[("Control mean", "footer"), "Sector"] == ""
    assert "Control mean left blank where it differs between the rows of a model." in t.notes
    d = t.tidy()
    assert len(d) == len(r.levels) and d["row"].is_unique
    assert d["estimate"].tolist() == [e.estimate for e in r.effects]


def test_categorical_results_align_by_level_and_take_labels(trial_study):
    import ips_impact as ii

    r6 = ii.itt(trial_study, "nace", horizon=6)
    r10 = ii.itt(trial_study, "nace", horizon=10)
    t = compare({"k=6": r6, "k=10": r10}, labels={"nace=Q": "Health care"})
    f = t.to_frame()
    rows = _estimate_rows(t)
    assert "arm (itt), Health care" in rows and "arm (itt), nace=Q" not in rows
    assert f.loc[("arm (itt), Health care", "estimate"), "k=6"] == _num(r6.effect_at("Q").estimate)
    assert f.loc[("arm (itt), Health care", "estimate"), "k=10"] == _num(r10.effect_at("Q").estimate)
    for lv in sorted(set(r6.levels) & set(r10.levels) - {"Q"}):
        assert f.loc[(f"arm (itt), nace={lv}", "estimate"), "k=6"] == _num(r6.effect_at(lv).estimate)
        assert f.loc[(f"arm (itt), nace={lv}", "estimate"), "k=10"] == _num(r10.effect_at(lv).estimate)
    assert len(rows) == len(set(r6.levels) | set(r10.levels))
    assert f.loc[("Horizon", "footer"), "k=10"] == "10"


def test_heterogeneity_footer_reports_the_whole_sample(trial_study):
    import ips_impact as ii

    h = ii.heterogeneity(trial_study, "employed", by="region", horizon=6)
    tidy = h.tidy()
    sub = tidy[tidy["estimand"] == "subgroup"]
    joint = tidy[tidy["estimand"] == "heterogeneity_test"].iloc[0]
    assert sub["nobs"].nunique() > 1 and int(sub["nobs"].iloc[0]) < h.nobs  # the old bug would show
    t = compare([h], footer=("nobs", "n_treated", "n_control", "control_mean"))
    f = t.to_frame()
    assert f.loc[("Observations", "footer"), "(1)"] == str(h.nobs) == str(int(joint["nobs"])) == "1200"
    assert f.loc[("Treated", "footer"), "(1)"] == str(h.n_treated) == "600"
    assert f.loc[("Control", "footer"), "(1)"] == str(h.n_control) == "600"
    assert f.loc[("Control mean", "footer"), "(1)"] == ""  # one per region, none for all
    for r in sub.itertuples(index=False):
        assert f.loc[(f"{r.term} (subgroup)", "estimate"), "(1)"] == _num(r.estimate)
    assert f.loc[("joint:region (heterogeneity_test)", "estimate"), "(1)"] == f"p = {_num(joint['p_value'])}"


def test_footer_counts_without_a_result_level_count():
    # a dynamic result has no nobs of its own: the common value, or the range of the rows shown
    effects = tuple(EffectResult(outcome="y", estimate=0.01 * k, std_error=0.02, df=100, nobs=100 - k,
                                 n_treated=50, n_control=50 - k, control_mean=0.3, horizon=k)
                    for k in (2, 4))
    dyn = DynamicEffectResult(outcome="y", effects=effects)
    f = compare([dyn], footer=("nobs", "n_treated", "n_control", "control_mean")).to_frame()
    assert f.loc[("Observations", "footer"), "(1)"] == "96..98"
    assert f.loc[("Treated", "footer"), "(1)"] == "50"
    assert f.loc[("Control", "footer"), "(1)"] == "46..48"
    assert f.loc[("Control mean", "footer"), "(1)"] == "0.300"  # the same for every row: shown
    f2 = compare([dyn], keep=[r"k=4$"]).to_frame()
    assert f2.loc[("Observations", "footer"), "(1)"] == "96"


def test_rows_with_identical_labels_are_numbered_not_hidden():
    from ips_impact.results import ResultBase, make_row, result_dataclass

    @result_dataclass
    class Twice(ResultBase):
        """Two rows that nothing tells apart."""

        def _tidy_rows(self):
            return [make_row(outcome="y", estimate=e, std_error=0.1, nobs=10, n_treated=5,
                             n_control=5) for e in (0.5, 0.7)]

    f = compare([Twice()]).to_frame()
    assert f.loc[("arm (itt) #1", "estimate"), "(1)"] == "0.500"
    assert f.loc[("arm (itt) #2", "estimate"), "(1)"] == "0.700"


def test_randomization_interval_line():
    w = with_ri(_work(), 0.03, ri_conf_low=0.012, ri_conf_high=float("inf"))
    t = compare([w, _benefit()], show=("std_error", "ri_conf_int"))
    f = t.to_frame()
    assert f.loc[("arm (itt)", "ri_conf_int"), "(1)"] == "RI CI [0.012, inf]"
    assert f.loc[("ips_started (late)", "ri_conf_int"), "(2)"] == ""
    assert t.tidy().loc[0, "ri_conf_high"] == float("inf")
    with pytest.raises(EstimationError, match="ri_conf_low"):
        compare([_work()], show=("ri_conf_int",))


def test_policy_withholds_small_estimates_and_rounds_counts():
    from ips_impact import disclosure

    small = EffectResult(outcome="work_on_di", estimate=0.2, std_error=0.1, df=5, nobs=8,
                         n_treated=4, n_control=4)
    t = compare({"All": _work(), "Tiny": small}, footer=("nobs",), policy={})
    f = t.to_frame()
    assert f.loc[("arm (itt)", "estimate"), "Tiny"] == "·"
    assert f.loc[("arm (itt)", "std_error"), "Tiny"] == ""
    assert f.loc[("Observations", "footer"), "All"] == "600"
    assert f.loc[("Observations", "footer"), "Tiny"] == "·"  # a count below 10 is not shown
    assert t.record.status == "suppressed" and t.record.suppressed[0][0] == "Tiny: arm (itt)"
    assert any("withheld" in n for n in t.notes) and any("rounded" in n for n in t.notes)
    assert disclosure.check(t.to_markdown()).passed
    assert compare([_work()]).record is None
