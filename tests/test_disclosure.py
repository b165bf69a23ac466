"""Disclosure control: the policy's rules, its TOML form, records, and the output checker."""

from __future__ import annotations

import pytest

from ips_impact import disclosure as D
from ips_impact import units
from ips_impact.errors import DisclosureError


def _nrn(body: int) -> str:
    return f"{body:09d}{97 - body % 97:02d}"


def test_default_policy_values() -> None:
    p = D.DisclosurePolicy()
    assert (p.min_persons, p.rounding, p.min_residual_df) == (10, 5, 10)
    assert p.zeros_disclosive and p.differencing and not p.allow_extremes


@pytest.mark.parametrize(("n", "rounded"), [(0, 0), (2, 0), (3, 5), (1183, 1185), (1182, 1180), (600, 600)])
def test_round_count(n: int, rounded: int) -> None:
    assert D.DisclosurePolicy().round_count(n) == rounded


def test_policy_from_toml(tmp_path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text("[disclosure]\nmin_persons = 20\nrounding = 10\n", encoding="utf-8")
    p = D.DisclosurePolicy.from_toml(f)
    assert p.min_persons == 20 and p.rounding == 10 and p.min_residual_df == 10
    f.write_text("min_person = 20\n", encoding="utf-8")
    with pytest.raises(DisclosureError, match="unknown setting"):
        D.DisclosurePolicy.from_toml(f)
    with pytest.raises(DisclosureError, match="positive integer"):
        D.DisclosurePolicy(min_persons=0)


def test_estimate_needs_persons_and_residual_df() -> None:
    p = D.DisclosurePolicy()
    assert p.estimate_ok(60, 55)
    assert not p.estimate_ok(9, 100)
    assert not p.estimate_ok(60, 9)


def test_primary_zero_and_secondary_suppression() -> None:
    p = D.DisclosurePolicy()
    # one small cell: it and the smallest other cell go (else BXL = total - VL - WAL)
    out = p.suppress_cells({"VL": 340, "WAL": 200, "BXL": 6})
    assert out == {"BXL": "fewer than 10 persons",
                   "WAL": "recoverable by subtraction from the published total"}
    # a zero beside a small cell tells where the few persons are
    out = p.suppress_cells({"a": 0, "b": 4, "c": 50, "d": 60})
    assert set(out) == {"a", "b"}
    # nothing small: nothing suppressed, zeros alone are fine
    assert p.suppress_cells({"a": 0, "b": 40, "c": 50}) == {}
    # no published total: no secondary suppression
    assert p.suppress_cells({"VL": 340, "BXL": 6}, total_published=False) == {"BXL": "fewer than 10 persons"}


def test_record_builder_and_record() -> None:
    rb = D.RecordBuilder("brief.html", D.DisclosurePolicy())
    assert rb.estimate("region BXL", 8) is False
    assert rb.estimate("itt work_on_di k6", 1183, 1170) is True
    assert rb.count("randomized", 1183) == 1185
    rec = rb.record()
    assert rec.status == "suppressed"
    d = rec.to_dict()
    assert d["suppressed"] == [{"item": "region BXL", "reason": "fewer than 10 persons"}]
    assert d["rounded"] == ["randomized"] and d["policy"]["min_persons"] == 10
    assert D.RecordBuilder("x", D.DisclosurePolicy()).record().status == "passed"


def test_check_finds_a_small_cell_in_each_language() -> None:
    for text in ("Brussels: n = 7", "Bruxelles : 7 personnes", "Brussel: 7 deelnemers", "N=3 at risk"):
        rep = D.check(text)
        assert rep.kinds() == {"small_cell"}, text
    for text in ("n = 1,183", "n = 1.183", "n = 1\u202f183", "12 persons", "0 at risk", "n = 10"):
        assert D.check(text).passed, text
    assert not D.check("n = 7", policy={"min_persons": 5}).kinds()
    # a rate per 100 people is not a cell
    assert D.check("6 à 7 personnes de plus sur 100 travaillent").passed
    assert D.check("EUR 10,050 for every 5 participants", policy={"min_persons": 10}).passed
    assert not D.check("7 personnes ont quitté; sur 100 autres").passed


def test_check_finds_keys_and_national_numbers_without_echoing_them() -> None:
    nrn = _nrn(850101123)
    assert D.looks_like_national_number(nrn)
    assert D.looks_like_national_number(f"{nrn[:2]}.{nrn[2:4]}.{nrn[4:6]}-{nrn[6:9]}.{nrn[9:]}")
    assert not D.looks_like_national_number(nrn[:-1] + str((int(nrn[-1]) + 1) % 10))
    rep = D.check(f"line one\nperson {nrn} and household HDBNKQ7U225")
    assert rep.kinds() == {"national_register_number", "key"}
    assert all(f.line == 2 for f in rep.findings)
    assert nrn not in str(rep) and "HDBNKQ7U225" not in str(rep)
    with pytest.raises(DisclosureError):
        rep.raise_if_failed()
    # codes and words of a brief are not keys
    assert D.check("HC2, CR2, ANCOVA, VL-2018H1, RIZIV/INAMI, sha256 3f9a0c2b1d4e").passed
    assert D.check("pseudonym abc", keys=["abc"]).kinds() == {"key"}


def test_check_reads_files(tmp_path) -> None:
    html = tmp_path / "x.html"
    html.write_text("<table><tr><td>n = 4</td></tr></table><img src='data:image/png;base64,QUJDMTIzNDU2Nzg5'>",
                    encoding="utf-8")
    assert D.check(html).kinds() == {"small_cell"}
    import docx

    d = docx.Document()
    d.add_paragraph("household HDBNKQ7U225")
    d.save(tmp_path / "x.docx")
    assert D.check(tmp_path / "x.docx").kinds() == {"key"}


def test_units_dictionary_and_time_labels() -> None:
    assert units.unit_of("di_benefit").short == "EUR/month"
    assert units.unit_of("earnings").short == "EUR/quarter"
    assert units.unit_of("earnings", frequency="M").short == "EUR/month"
    assert units.unit_of("fte").short == "FTE share"
    assert units.effect_unit("work_on_di").description == "percentage points"
    assert units.time_label(6, "Q") == "k = 6 (18 months)"
    assert units.time_label(10, "Q") == "k = 10 (30 months)"
    assert units.time_label(18, "M") == "k = 18 (18 months)"
    assert units.time_label(2, "Y") == "k = 2 (24 months)"
    assert units.time_label(3, "int") == "k = 3 (periods)"
    assert units.horizon_text("5:8", "Q") == "k 5–8 (months 13–24)"
    assert units.horizon_text(None, "Q") == ""


def test_check_flags_written_out_extremes_unless_allowed() -> None:
    assert D.check("DI benefit: max = 2,604 EUR").kinds() == {"extreme"}
    assert D.check("minimum: 960").kinds() == {"extreme"}
    assert D.check("minimum detectable effect (80% power)").passed
    assert D.check("max = 2,604", policy={"allow_extremes": True}).passed


def test_survival_plot_hides_small_risk_sets_by_default() -> None:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import ips_impact as ii

    study = ii.synthetic.generate(n_persons=60, seed=5, tables=("assignment", "panel")).study()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ii.time_to_event(study, "employed", start=1, tau=12)
    ax = res.plot()
    texts = [t.get_text() for a in ax.figure.axes for t in a.texts]
    plt.close(ax.figure)
    assert "<10" in texts  # the tail of a small trial has small risk sets
    assert not [t for t in texts if t.isdigit() and 0 < int(t) < 10]
