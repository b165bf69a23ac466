"""Figures of the brief, drawn from results with labels from the language's catalogue.

Each figure is returned as SVG text (text drawn as paths, so the file needs no font)
and PNG bytes (for Word). Tick labels use the locale's decimal mark.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from ips_impact.brief.catalogue import Catalogue
from ips_impact.brief.fmt import Formatter

__all__ = ["effect_over_time", "found_job", "regional_forest", "render_figure"]

_IPS, _CONTROL = "#1b6ca8", "#b5651d"


def _mpl() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def render_figure(fig: Any, kind: str = "svg") -> Any:
    """SVG text (``kind="svg"``) or PNG bytes (``"png"``) of a matplotlib figure; closes it.

    The SVG carries no creation date and a fixed hash salt, so the same figure gives
    the same bytes on every run. Figures are laid out by ``tight_layout`` at a fixed
    size (one draw; ``bbox_inches="tight"`` would draw twice).
    """
    plt = _mpl()
    import matplotlib

    try:
        with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "ips_impact"}):
            if kind == "png":
                png = io.BytesIO()
                fig.savefig(png, format="png", dpi=150)
                return png.getvalue()
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prolog and DOCTYPE for inline HTML


def _locale_ticks(ax: Any, fmt: Formatter, *, axis: str = "y", digits: int = 0) -> None:
    from matplotlib.ticker import FuncFormatter

    f = FuncFormatter(lambda v, _pos: fmt.number(v, digits))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(f)


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="0.9", lw=0.6)
    ax.set_axisbelow(True)


def effect_over_time(band: Any, *, sup_t: bool, cat: Catalogue, fmt: Formatter,
                     title: str, months_per_period: float | None) -> Any:
    """Effect by event time in percentage points, pointwise intervals and the sup-t band."""
    plt = _mpl()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    k = band["k"].to_numpy(dtype=float)
    est = 100 * band["estimate"].to_numpy(dtype=float)
    lo = 100 * band["conf_low"].to_numpy(dtype=float)
    hi = 100 * band["conf_high"].to_numpy(dtype=float)
    level = cat["figure.interval"]
    if sup_t:
        ax.fill_between(k, 100 * band["band_low"].to_numpy(dtype=float),
                        100 * band["band_high"].to_numpy(dtype=float), color=_IPS, alpha=0.15,
                        lw=0, label=cat["figure.band"])
    ax.errorbar(k, est, yerr=np.vstack([est - lo, hi - est]), fmt="o", color=_IPS, ms=3.5, lw=1,
                capsize=0, label=f"{cat['figure.estimate']} ({level})")
    ax.axhline(0, color="0.3", lw=0.8)
    if (k < 0).any() and (k >= 0).any():
        ax.axvline(-0.5, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel(cat["figure.k_axis"])
    ax.set_ylabel(cat["figure.effect_axis"])
    ax.set_title(title, loc="left", fontsize=10.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _locale_ticks(ax, fmt)
    _style(ax)
    # under the axes, where it hides no estimate
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    return fig


def found_job(km: Any, *, cat: Catalogue, fmt: Formatter, title: str,
              months_per_period: float | None) -> Any:
    """Share of each arm that has had the event (1 - Kaplan–Meier), by months since randomization.

    The caller cuts the steps after the last risk set of the policy's minimum size.
    """
    plt = _mpl()

    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    scale = months_per_period or 1.0
    for arm, colour, label in ((1, _IPS, cat["figure.ips"]), (0, _CONTROL, cat["figure.control"])):
        a = km[km["arm"] == arm].sort_values("time")
        if not len(a):
            continue
        t = np.concatenate([[0.0], a["time"].to_numpy(dtype=float)]) * scale
        s = 100 * (1 - np.concatenate([[1.0], a["survival"].to_numpy(dtype=float)]))
        ax.step(t, s, where="post", color=colour, label=label, lw=1.6)
        if {"conf_low", "conf_high"} <= set(a.columns):
            lo = 100 * (1 - np.concatenate([[1.0], a["conf_high"].to_numpy(dtype=float)]))
            hi = 100 * (1 - np.concatenate([[1.0], a["conf_low"].to_numpy(dtype=float)]))
            ax.fill_between(t, lo, hi, step="post", color=colour, alpha=0.12, lw=0)
    ax.set_ylim(0, 100)
    ax.set_xlim(left=0)
    ax.set_xlabel(cat["figure.months_axis"] if months_per_period else cat["figure.k_axis"])
    ax.set_ylabel(cat["figure.found_job"])
    ax.set_title(title, loc="left", fontsize=10.5)
    _locale_ticks(ax, fmt)
    _style(ax)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def regional_forest(rows: Sequence[dict[str, Any]], *, overall: float | None, cat: Catalogue,
                    fmt: Formatter, title: str) -> Any:
    """One row per region: estimate and interval in percentage points; labels carry rounded n.

    ``rows`` hold ``label``, ``estimate``, ``conf_low``, ``conf_high`` (fractions) or
    ``suppressed=True``. The legend sits under the axes, where it covers no interval.
    """
    plt = _mpl()

    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.62 * len(rows)))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        if r.get("suppressed"):
            continue
        e, lo, hi = (100 * r[c] for c in ("estimate", "conf_low", "conf_high"))
        ax.plot([lo, hi], [yi, yi], color=_IPS, lw=2)
        ax.plot([e], [yi], "o", color=_IPS, ms=6)
    ax.axvline(0, color="0.3", lw=0.8)
    handles = []
    if overall is not None and np.isfinite(overall):
        handles.append(ax.axvline(100 * overall, color="0.5", lw=0.8, ls="--",
                                  label=cat["figure.overall"]))
    ax.set_yticks(y)
    ax.set_yticklabels([r["label"] for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(cat["figure.effect_axis"])
    ax.set_title(title, loc="left", fontsize=10.5)
    _locale_ticks(ax, fmt, axis="x")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if handles:
        ax.legend(handles=handles, frameon=False, fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, -0.32 if len(rows) < 4 else -0.2), ncol=1)
    fig.tight_layout()
    return fig


def consort(arms: Sequence[dict[str, Any]], *, top: str, title: str) -> Any:
    """CONSORT flow: randomized → assigned (per arm) → lost / analysed (→ started IPS).

    ``arms`` holds per arm ``label`` and ordered ``(text, count_text)`` boxes; counts
    arrive formatted (rounded, suppressed) by the caller.
    """
    plt = _mpl()
    from matplotlib.patches import FancyBboxPatch

    depth = max(len(a["boxes"]) for a in arms)
    fig, ax = plt.subplots(figsize=(7.2, 0.5 + 0.52 * (depth + 1)))
    ax.set_axis_off()
    ax.set_xlim(0, 2)
    ax.set_ylim(-0.6, depth + 0.6)

    def box(x: float, y: float, text: str, *, strong: bool = False, muted: bool = False) -> None:
        w, h = 0.8, 0.62
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                    fc="#f1f5f9" if not strong else "#dbe8f4",
                                    ec="#8a96a3" if muted else "#1b6ca8", lw=1))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5,
                color="#55606e" if muted else "#1d2733")

    box(1.0, depth, top, strong=True)
    for i, arm in enumerate(arms):
        x = 0.5 + i
        ax.annotate("", xy=(x, depth - 0.69), xytext=(1.0, depth - 0.31),
                    arrowprops=dict(arrowstyle="->", color="#1b6ca8", lw=0.9))
        for j, (text, muted) in enumerate(arm["boxes"]):
            y = depth - 1 - j
            box(x, y, text, strong=j == 0, muted=muted)
            if j:
                ax.annotate("", xy=(x, y + 0.31), xytext=(x, y + 0.69),
                            arrowprops=dict(arrowstyle="->", color="#1b6ca8", lw=0.9))
    if title:
        ax.set_title(title, loc="left", fontsize=10.5)
    fig.tight_layout(pad=0.2)
    return fig
