"""Every ``.plot()`` of a result, drawn on the synthetic trial (Agg backend).

One contract for all of them: ``plot(ax=None, ...)`` returns the matplotlib ``Axes`` of
the main panel (``.figure`` is the whole figure), draws on the ``ax`` it is given, labels
its axes, and no person or household key appears anywhere in the figure — neither in a
text artist nor in the rendered file.
"""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import ips_impact as ii  # noqa: E402


@pytest.fixture(scope="module")
def study():
    return ii.synthetic.generate(n_persons=1200, seed=2018).study()


@pytest.fixture(scope="module")
def keys(study):
    """Every person and household key of the trial (randomized persons and members)."""
    found = set(study.persons["person_id"]) | set(study.persons["household_id"].dropna())
    found |= set(study.members["person_id"]) | set(study.households["person_id"])
    found = {str(k) for k in found}
    assert len(found) > 1200  # persons, household ids and members: the check has teeth
    return found


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fit(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-subgroup and ties warnings: not tested here
        return fn(*args, **kwargs)


def _texts(fig: Figure) -> list[str]:
    """The strings of every text artist of the figure (titles, labels, ticks, legends, cells)."""
    fig.canvas.draw()  # tick labels are only filled in when drawn
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # keep text as text in the file
        fig.savefig(buf, format="svg")
    return buf.getvalue()


def _leaked_keys(fig: Figure, keys: set[str]) -> list[str]:
    texts = _texts(fig) + [_svg(fig)]
    return sorted({k for k in keys for t in texts if k in t})


def _check(ax, keys):
    """The common contract: an Axes on a figure, labelled, without a person key."""
    assert isinstance(ax, Axes) and not isinstance(ax, Figure)
    assert isinstance(ax.figure, Figure)
    assert _leaked_keys(ax.figure, keys) == []
    return ax


def test_the_key_check_finds_a_key(study, keys):
    # the check used below must be able to fail: a figure showing one key is caught
    fig, ax = plt.subplots()
    pid = str(study.persons["person_id"].iloc[0])
    ax.set_yticks([0])
    ax.set_yticklabels([pid])
    assert _leaked_keys(fig, keys) == [pid]
    fig2, ax2 = plt.subplots()
    ax2.plot([0, 1], [0, 1], label=str(study.persons["household_id"].iloc[3]))
    ax2.legend()
    assert _leaked_keys(fig2, keys) == [str(study.persons["household_id"].iloc[3])]


def test_dynamic_effect_plot(study, keys):
    res = _fit(ii.itt_by_period, study, "employed", periods=range(-4, 9))
    ax = _check(res.plot(), keys)
    assert ax.get_xlabel() == "event time k (periods since randomization)"
    assert ax.get_ylabel() == "effect (percentage points)"
    assert "by event time" in ax.get_title(loc="left")
    # draws on the Axes it is given, and returns that one
    fig, given = plt.subplots()
    assert res.plot(given) is given and res.plot(ax=given) is given
    assert len(fig.axes) == 1


@pytest.mark.parametrize("by", ["region", "age"])
def test_heterogeneity_plot(study, keys, by):
    res = _fit(ii.heterogeneity, study, "employed", by=by, horizon=6)
    assert res.moderator == ("categorical" if by == "region" else "continuous")
    ax = _check(res.plot(), keys)
    assert ax.get_xlabel() == ("effect on employed (percentage points)" if by == "region" else "age")
    assert ax.get_ylabel() == ("region" if by == "region" else "effect on employed")
    if by == "region":
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert len(ticks) == 3 and all(t.split()[0] in {"VL", "WAL", "BXL"} for t in ticks)
        # counts in labels are rounded to 5 (disclosure control)
        assert all(int(t.split("≈")[1].strip(" )")) % 5 == 0 for t in ticks if "≈" in t)
        # the legend sits under the axes, where it covers no interval
        assert ax.get_legend().get_bbox_to_anchor().y0 < ax.get_window_extent().y0
    fig, given = plt.subplots()
    assert res.plot(given) is given


def test_balance_plot(study, keys):
    bt = _fit(ii.balance, study)
    ax = _check(bt.plot(), keys)
    assert ax.get_xlabel() == "normalised difference (IPS - control)"
    assert ax.get_ylabel() == "baseline covariate"
    assert len(ax.get_yticklabels()) == len(bt.table)
    fig, given = plt.subplots()
    assert bt.plot(given) is given


def test_km_plot_returns_the_curves_axes_with_the_risk_table_on_its_figure(study, keys):
    res = _fit(ii.time_to_event, study, "employed", horizon=20, tau=20)
    ax = _check(res.plot(min_cell=10), keys)
    fig = ax.figure
    assert len(fig.axes) == 2  # curves + numbers at risk
    curves, table = fig.axes
    assert ax is curves
    assert ax.get_ylabel() == "share not yet employed"
    assert table.get_xlabel() == "periods since randomization"  # shared x, labelled below
    assert table.get_title(loc="left") == "number at risk"
    assert [t.get_text() for t in table.get_yticklabels()] == ["IPS", "control"]
    n_ips = int((study.design.arm == 1).sum())
    assert str(n_ips) in [t.get_text() for t in table.texts]  # everyone at risk at time 0
    # without the risk table: one panel, labelled on both axes
    ax2 = _check(res.plot(risk_table=False), keys)
    assert len(ax2.figure.axes) == 1
    assert ax2.get_xlabel() == "periods since randomization"
    # on a given Axes: drawn there, no extra panel
    fig3, given = plt.subplots()
    assert res.plot(given) is given and len(fig3.axes) == 1
    assert given.get_ylabel() == "share not yet employed"


def test_spell_and_competing_risks_plots(study, keys):
    spell = _fit(ii.spell_survival, study, "employed", horizon=20)
    ax = _check(spell.plot(), keys)
    assert ax.figure.axes[-1].get_xlabel() == "periods since entering the spell"
    assert ax.get_ylabel() == "share still employed"
    cr = _fit(ii.competing_risks, study, {"work": "employed", "off_di": lambda p: p["on_di"] == 0},
              horizon=20)
    ax = _check(cr.plot(), keys)
    assert ax.get_xlabel() == "periods since randomization"
    assert ax.get_ylabel() == "cumulative incidence"
    assert all(float(t).is_integer() for t in ax.get_xticks())  # whole periods, no 2.5
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "work, IPS" in legend and "off_di, control" in legend
    fig, given = plt.subplots()
    assert cr.plot(given) is given


def test_consort_plot(study, keys):
    # not a result, but a figure of the trial: same return type, no key
    ax = _check(study.consort().plot(), keys)
    assert any("n = " in t for t in _texts(ax.figure))
