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
    assert "* p < 0.1, ** p < 0.05, *** p < 0.01." in t.notes
    # stars from randomization p-values: 0.04 -> two stars
    t2 = compare([with_ri(w, 0.04)], stars=True, pvalue="ri_p_value", show=("std_error", "ri_p_value"))
    f2 = t2.to_frame()
    assert f2.loc[("arm (itt)", "estimate"), "(1)"] == "0.095**"
    assert f2.loc[("arm (itt)", "ri_p_value"), "(1)"] == "{ri_p_value: 0.040}"
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
    assert "| Offered IPS (itt) | 0.095 |  |" in lines
    assert "|  | (0.030) |  |" in lines
    assert "| Observations | 600 | 580 |" in lines
    tex = t.to_latex()
    assert "Offered IPS (itt) & 0.095 &  \\\\" in tex
    assert "ips\\_started (late) &  & -110.000 \\\\" in tex
    assert "\\midrule\nOutcome & work\\_on\\_di & di\\_benefit \\\\" in tex
    assert tex.count("\\toprule") == 1 and tex.rstrip().splitlines()[-1].startswith("\\par")
    h = t.to_html()
    assert "<caption>Main effects</caption>" in h
    assert "<tr><th>Offered IPS (itt)</th><td>0.095</td><td></td></tr>" in h
    assert "<tfoot>" in h and "<tr><th>Observations</th><td>600</td><td>580</td></tr>" in h


def test_docx_round_trip(tmp_path):
    import docx  # the docx extra is part of the dev environment (make install)

    t = compare({"Work": _work(), "Benefit": _benefit()})
    path = t.to_docx(tmp_path / "table.docx")
    doc = docx.Document(str(path))
    table = doc.tables[0]
    rows = [[c.text for c in r.cells] for r in table.rows]
    assert rows[0] == ["", "Work", "Benefit"]
    assert rows[1] == ["arm (itt)", "0.095", ""]
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
    assert f.loc[("arm (itt)", "adj_p_value"), "(1)"] == "{adj_p_value: 0.200}"


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
    assert "* p $<$ 0.1, ** p $<$ 0.05, *** p $<$ 0.01." in tex


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
