"""Multi-model tables: ``compare(results)`` → :class:`ComparisonTable`.

One column per result, one block of rows per effect (estimate, then its standard error
in parentheses, optionally the confidence interval and p-values), then footer rows
(outcome, horizon, control mean, observations, standard-error type). The numbers come
from each result's ``.tidy()``, so any result family can be compared; the footer counts
(observations, treated, control) and the outcome name are the result's own ``nobs``,
``n_treated``, ``n_control`` and ``outcome`` when it has them, because a row of the tidy
table may describe a part of the sample only (a subgroup, say).

Rows are keyed by ``term`` and ``estimand``. Where a result has several rows with the
same key, the key is extended by what tells them apart: the row's ``outcome`` (one row
per category level of a categorical outcome: ``"arm (itt), nace=C"``), then its
``horizon`` (one row per event time: ``"arm (itt), k=4"``). Output is deterministic: the
same results and options give byte-identical text.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError
from ips_impact.results.base import ResultBase, frozen_frame

__all__ = ["compare", "ComparisonTable", "SHOW_OPTIONS", "PVALUE_OPTIONS", "FOOTER_OPTIONS"]

#: Lines that may be shown under each estimate.
SHOW_OPTIONS = (
    "std_error", "conf_int", "p_value", "ri_p_value", "ri_conf_int", "adj_p_value", "control_mean",
)
#: p-value columns that may drive the significance stars.
PVALUE_OPTIONS = ("p_value", "ri_p_value", "adj_p_value")
#: Footer rows that may be shown.
FOOTER_OPTIONS = ("outcome", "horizon", "control_mean", "nobs", "n_treated", "n_control", "cov_type")

_FOOTER_LABELS = {
    "outcome": "Outcome",
    "horizon": "Horizon",
    "control_mean": "Control mean",
    "nobs": "Observations",
    "n_treated": "Treated",
    "n_control": "Control",
    "cov_type": "Standard errors",
}
_SHOW_LABELS = {
    "std_error": "std_error",
    "conf_int": "conf_int",
    "p_value": "p_value",
    "ri_p_value": "ri_p_value",
    "ri_conf_int": "ri_conf_int",
    "adj_p_value": "adj_p_value",
    "control_mean": "control_mean",
}


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise EstimationError(
            f"{name} must be one of {', '.join(repr(a) for a in allowed)}; you passed {value!r}",
            fix=f"choose {name} among the allowed values.",
        )


@dataclass(frozen=True, eq=False)
class ComparisonTable:
    """A formatted multi-model table (frozen). Build it with :func:`compare`.

    Attributes
    ----------
    data
        Long numeric table: the tidy rows of every result with a ``model`` column
        and the ``row`` key used in the formatted table.
    cells
        The formatted grid (strings): index ``(row, line)``, one column per model.
    notes
        Footnotes (significance legend, what the parentheses hold).
    """

    data: pd.DataFrame
    cells: pd.DataFrame
    notes: tuple[str, ...]
    title: str | None = None
    record: Any = None  # DisclosureRecord when compare() was given a policy

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", frozen_frame(self.data))
        object.__setattr__(self, "cells", frozen_frame(self.cells))
        object.__setattr__(self, "notes", tuple(self.notes))

    # ---- plain data
    def to_frame(self) -> pd.DataFrame:
        """The formatted grid as strings: index ``(row, line)``, one column per model."""
        return self.cells.copy()

    def tidy(self) -> pd.DataFrame:
        """The numbers behind the table (one tidy row per model × effect row)."""
        return self.data.copy()

    def _grid(self) -> tuple[list[str], list[list[str]], int]:
        """Header, body rows (first cell = label), index where the footer starts."""
        header = [""] + [str(c) for c in self.cells.columns]
        body: list[list[str]] = []
        footer_start = None
        for i, ((row, line), vals) in enumerate(zip(self.cells.index, self.cells.itertuples(index=False))):
            if line == "footer" and footer_start is None:
                footer_start = i
            label = (_display_row(row) if line == "estimate" else row) if line in ("estimate", "footer") else ""
            body.append([label] + [str(v) for v in vals])
        return header, body, (len(body) if footer_start is None else footer_start)

    # ---- renderers
    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown table, with the notes below it."""
        header, body, _ = self._grid()

        def esc(s: str) -> str:
            return s.replace("|", "\\|")

        lines = []
        if self.title:
            lines += [f"**{esc(self.title)}**", ""]
        lines.append("| " + " | ".join(esc(h) for h in header) + " |")
        lines.append("|" + "|".join([":---"] + [":---:"] * (len(header) - 1)) + "|")
        for r in body:
            lines.append("| " + " | ".join(esc(c) for c in r) + " |")
        if self.notes:
            lines.append("")
            lines.extend(self.notes)
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        """LaTeX ``tabular`` with booktabs rules (needs ``\\usepackage{booktabs}``)."""
        header, body, fstart = self._grid()
        ncol = len(header)
        out = []
        if self.title:
            out.append(f"% {self.title}")
        out.append("\\begin{tabular}{l" + "c" * (ncol - 1) + "}")
        out.append("\\toprule")
        out.append(" & ".join(_latex_escape(h) for h in header) + " \\\\")
        out.append("\\midrule")
        for i, r in enumerate(body):
            if i == fstart and fstart < len(body):
                out.append("\\midrule")
            out.append(" & ".join(_latex_escape(c) for c in r) + " \\\\")
        out.append("\\bottomrule")
        out.append("\\end{tabular}")
        if self.notes:
            out.append(
                "\\par\\footnotesize " + " ".join(_latex_escape(n) for n in self.notes)
            )
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        """HTML ``<table>`` (estimates in the body, footer rows in ``<tfoot>``)."""
        header, body, fstart = self._grid()
        out = ['<table class="ips-compare">']
        if self.title:
            out.append(f"<caption>{html.escape(self.title)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>")
        out.append("<tbody>")
        for i, r in enumerate(body):
            if i == fstart:
                out.append("</tbody><tfoot>")
            cells = [f"<th>{html.escape(r[0])}</th>"] + [f"<td>{html.escape(c)}</td>" for c in r[1:]]
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tfoot>" if fstart < len(body) else "</tbody>")
        out.append("</table>")
        if self.notes:
            out.append("<p>" + "<br>".join(html.escape(n) for n in self.notes) + "</p>")
        return "\n".join(out) + "\n"

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return f"<ComparisonTable: {len(self.cells.columns)} models, {len(self.data)} effect rows>"

    def to_docx(self, path: str | Path) -> Path:
        """Write the table to a Word document at ``path`` (needs the ``docx`` extra).

        Returns the path written.
        """
        try:
            import docx  # python-docx, optional dependency
        except ImportError as exc:
            raise ImportError(
                "to_docx needs python-docx; install it with: pip install ips_impact[docx]"
            ) from exc
        header, body, _ = self._grid()
        document = docx.Document()
        if self.title:
            document.add_paragraph(self.title)
        table = document.add_table(rows=1 + len(body), cols=len(header))
        table.style = "Table Grid"  # cell borders: a table without rules is hard to read
        for j, h in enumerate(header):
            table.cell(0, j).text = h
        for i, r in enumerate(body, start=1):
            for j, c in enumerate(r):
                table.cell(i, j).text = c
        for n in self.notes:
            document.add_paragraph(n)
        path = Path(path)
        document.save(str(path))
        return path


def _latex_escape(s: str) -> str:
    repl = {
        "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        # in text mode with the default font encoding "<" would print as an inverted "!"
        "<": r"$<$", ">": r"$>$",
    }
    return "".join(repl.get(ch, ch) for ch in s)


def _fmt(x: Any, digits: int) -> str:
    if x is None:
        return ""
    v = float(x)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    s = f"{v:.{digits}f}"
    # no "-0.000"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def _known(v: Any) -> bool:
    return v is not None and not (isinstance(v, (float, np.floating)) and math.isnan(v))


def _horizon_one(v: Any) -> str:
    """One horizon as text: ``6`` (also for a float ``6.0``), ``"4:8"``; ``""`` if missing."""
    if not _known(v):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _horizon_text(values: list[Any]) -> str:
    """Footer text of a result's horizons: ``6``, ``"4:8"``, ``-4..8`` for several."""
    hs = list(dict.fromkeys(_horizon_one(v) for v in values if _known(v)))
    if not hs:
        return ""
    if len(hs) == 1:
        return hs[0]
    return f"{hs[0]}..{hs[-1]}"


def _row_keys(t: pd.DataFrame, labels: Mapping[str, str]) -> pd.Series:
    """Row labels of one result's tidy rows (see the module docstring), all distinct."""
    key = t["term"].map(lambda x: labels.get(x, x)).astype(str) + " (" + t["estimand"].astype(str) + ")"
    parts = (
        ("outcome", t["outcome"].map(lambda v: labels.get(str(v), str(v)))),
        ("horizon", t["horizon"].map(lambda v: "k=" + _horizon_one(v) if _known(v) else "")),
    )
    for _, text in parts:
        dup = key.duplicated(keep=False)
        if not dup.any():
            break
        # add the part only within groups of equal keys where it differs
        varies = text.groupby(key).transform("nunique") > 1
        add = dup & varies & (text != "")
        key = key.where(~add, key + ", " + text)
    if key.duplicated().any():  # identical labels: number them rather than hide a row
        nth = key.groupby(key).cumcount() + 1
        dup = key.duplicated(keep=False)
        key = key.where(~dup, key + " #" + nth.astype(str))
    return key


def _common_text(values: Sequence[Any], fmt: Any) -> tuple[str, bool]:
    """``(text, varies)``: the one known value formatted, ``""`` if none, or ``min..max``."""
    known = [v for v in values if _known(v)]
    uniq = list(dict.fromkeys(known))
    if not uniq:
        return "", False
    if len(uniq) == 1:
        return fmt(uniq[0]), False
    return f"{fmt(min(uniq))}..{fmt(max(uniq))}", True


#: How each line under an estimate is labelled (readable in every export format).
_LINE_PREFIX = {
    "p_value": "p = ",
    "ri_p_value": "RI p = ",
    "adj_p_value": "adj. p = ",
    "control_mean": "control mean ",
    "ri_conf_int": "RI CI ",
}
_ESTIMAND_NAMES = {"itt": "ITT", "late": "LATE", "did": "DiD", "subgroup": "subgroup",
                   "spillover": "spillover"}


def _display_row(row: str) -> str:
    """Row key as a reader sees it: ``"arm (itt), k=6"`` → ``"IPS offer (ITT), k = 6"``."""
    m = re.match(r"^(.*?) \(([^()]*)\)(.*)$", row)
    if not m:
        return row
    term, estimand, rest = m.groups()
    term = "IPS offer" if term == "arm" else term
    estimand = _ESTIMAND_NAMES.get(estimand, estimand.replace("_", " "))
    rest = re.sub(r"\bk=", "k = ", rest)
    return f"{term} ({estimand}){rest}"


def _stars(p: Any, levels: Sequence[float]) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    return "*" * sum(1 for lv in levels if float(p) < lv)


def compare(
    results: Sequence[ResultBase] | Mapping[str, ResultBase],
    *,
    names: Sequence[str] | None = None,
    stars: bool = False,
    star_levels: Sequence[float] = (0.1, 0.05, 0.01),
    pvalue: str | None = None,
    show: Sequence[str] = ("std_error",),
    footer: Sequence[str] = ("outcome", "horizon", "control_mean", "nobs", "cov_type"),
    digits: int = 3,
    labels: Mapping[str, str] | None = None,
    keep: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    title: str | None = None,
    policy: Any = None,
) -> ComparisonTable:
    """Put several results side by side.

    Parameters
    ----------
    results
        Results (any family with ``.tidy()``), or a mapping ``name → result`` (the
        names head the columns).
    names
        Column headings (default: the mapping's keys, else ``(1)``, ``(2)``, …).
    stars
        Add significance stars to estimates: one per level of ``star_levels`` that
        the p-value falls below (default ``*`` p < 0.1, ``**`` p < 0.05, ``***`` p < 0.01).
    pvalue
        Which p-value drives the stars: one of :data:`PVALUE_OPTIONS`. Default: the
        p-value the table shows (``adj_p_value``, else ``ri_p_value``, else ``p_value``,
        in that order of preference among ``show``), so that the stars never disagree
        with the number beside them; the footnote names it.
    show
        Lines under each estimate, among :data:`SHOW_OPTIONS`: ``"std_error"`` (in
        parentheses), ``"conf_int"`` (in brackets), ``"p_value"``, ``"ri_p_value"``,
        ``"ri_conf_int"`` (the randomization interval by test inversion),
        ``"adj_p_value"``, ``"control_mean"`` (in braces, labelled).
    footer
        Footer rows among :data:`FOOTER_OPTIONS`. ``"nobs"``, ``"n_treated"``,
        ``"n_control"`` are the result's whole estimation sample (its ``nobs``… when it
        has them, e.g. all persons of a subgroup analysis; otherwise the common value
        of the rows shown, or their range ``min..max``). ``"control_mean"`` is left
        blank, with a note, when it differs between the rows of a result (subgroups,
        event times, category levels): show it per row with ``show=(…, "control_mean")``.
    digits
        Decimals of every number but counts.
    labels
        Display names for terms (e.g. ``{"arm": "Offered IPS"}``) and for the outcomes
        that label the rows of a categorical result (e.g. ``{"nace=Q": "Health care"}``).
    keep, drop
        Regular expressions matched (``re.search``) against the row labels, e.g.
        ``"k=(6|10)$"`` or ``"lee_"``: only rows matching some ``keep`` pattern (all rows
        when ``None``) and no ``drop`` pattern are shown.
    title
        Caption.
    policy
        Disclosure control for a table meant for publication
        (:class:`~ips_impact.disclosure.DisclosurePolicy`, a mapping or a TOML path):
        estimates resting on fewer than ``min_persons`` persons or ``min_residual_df``
        residual degrees of freedom are withheld (shown as ``·``), footer counts are
        rounded to a multiple of ``rounding``, and the table's ``record`` says what was
        done. ``None`` (default): no disclosure control (an analyst's table).

    Returns
    -------
    ComparisonTable
    """
    if isinstance(results, Mapping):
        items = list(results.items())
        res = [r for _, r in items]
        default_names = [str(k) for k, _ in items]
    else:
        res = list(results)
        default_names = [f"({i + 1})" for i in range(len(res))]
    if not res:
        raise EstimationError("compare() needs at least one result", fix="pass a list of results.")
    bad = [type(r).__name__ for r in res if not hasattr(r, "tidy")]
    if bad:
        raise EstimationError(
            f"compare() takes results with a .tidy() method; got {', '.join(sorted(set(bad)))}",
            fix="pass results returned by the estimators of ips_impact.",
        )
    cols = list(names) if names is not None else default_names
    if len(cols) != len(res):
        raise EstimationError(
            f"{len(cols)} names for {len(res)} results", fix="give one name per result."
        )
    if len(set(cols)) != len(cols):
        raise EstimationError("column names must be distinct", fix="give each result its own name.")
    if pvalue is None:
        shown = [c for c in ("adj_p_value", "ri_p_value", "p_value") if c in show]
        pvalue = shown[0] if shown else "p_value"
    _check_choice("pvalue", pvalue, PVALUE_OPTIONS)
    for s in show:
        _check_choice("show", s, SHOW_OPTIONS)
    for f in footer:
        _check_choice("footer", f, FOOTER_OPTIONS)
    if not isinstance(digits, int) or digits < 0:
        raise EstimationError(f"digits must be a non-negative int; you passed {digits!r}")
    levels = sorted(float(x) for x in star_levels)[::-1]  # e.g. 0.1, 0.05, 0.01
    labels = dict(labels or {})

    frames = []
    for name, r in zip(cols, res):
        t = r.tidy().copy()
        t.insert(0, "model", name)
        t.insert(1, "row", _row_keys(t, labels))
        t["cov_type"] = (r.spec.get("cov_type") if hasattr(r, "spec") else None)
        frames.append(t)
    data = pd.concat(frames, ignore_index=True, sort=False)
    wanted = [c for c in ("ri_p_value", "adj_p_value") if c in show]
    if "ri_conf_int" in show:
        wanted += ["ri_conf_low", "ri_conf_high"]
    if stars and pvalue != "p_value":
        wanted.append(pvalue)
    for col in wanted:
        if col not in data.columns:
            raise EstimationError(
                f"the table asks for {col!r} but no result carries it",
                fix="add randomization-inference or adjusted p-values first, or drop it from show.",
            )

    row_order = list(dict.fromkeys(data["row"]))
    patterns = []
    for arg, pats in (("keep", keep or ()), ("drop", drop)):
        if isinstance(pats, str):
            pats = (pats,)
        for pat in pats:
            try:
                patterns.append((arg, re.compile(pat)))
            except (re.error, TypeError) as exc:
                raise EstimationError(f"{arg} pattern {pat!r} is not a valid regular expression: {exc}",
                                      fix="pass regular expressions such as 'k=6$' or 'lee_'.") from None
    keep_pats = [p for a, p in patterns if a == "keep"]
    drop_pats = [p for a, p in patterns if a == "drop"]
    row_order = [r for r in row_order
                 if (keep is None or any(p.search(r) for p in keep_pats))
                 and not any(p.search(r) for p in drop_pats)]
    if not row_order:
        raise EstimationError("keep/drop leave no row in the table",
                              fix="check the patterns against the row labels, e.g. 'arm (itt)'.")
    data_all = data
    data = data[data["row"].isin(row_order)].reset_index(drop=True)
    pol = rec = None
    withheld: set[tuple[str, str]] = set()
    if policy is not None:
        from ips_impact.disclosure import DisclosurePolicy, RecordBuilder

        pol = DisclosurePolicy.coerce(policy)
        rec = RecordBuilder(title or "comparison table", pol)
        for h in data.itertuples(index=False):
            df = None if pd.isna(h.df) else float(h.df)
            n = None if pd.isna(h.nobs) else float(h.nobs)
            if not rec.estimate(f"{h.model}: {h.row}", n, df):
                withheld.add((h.model, h.row))
    index: list[tuple[str, str]] = []
    grid: list[list[str]] = []
    for row in row_order:
        lines = ["estimate"] + list(show)
        for line in lines:
            vals = []
            for name in cols:
                hit = data[(data["model"] == name) & (data["row"] == row)]
                if hit.empty:
                    vals.append("")
                    continue
                h = hit.iloc[0]
                if (name, row) in withheld:
                    vals.append("·" if line == "estimate" else "")
                    continue
                no_estimate = pd.isna(h["estimate"])  # e.g. a joint test: only its p-value
                if line == "estimate":
                    if no_estimate:
                        pv = h.get(pvalue)
                        s = "" if pv is None or pd.isna(pv) else f"p = {_fmt(pv, digits)}"
                    else:
                        s = _fmt(h["estimate"], digits)
                    if stars and s:
                        s += _stars(h.get(pvalue), levels)
                elif line == "std_error":
                    s = "" if pd.isna(h["std_error"]) else f"({_fmt(h['std_error'], digits)})"
                elif line == "conf_int":
                    s = ("" if pd.isna(h["conf_low"]) and pd.isna(h["conf_high"])
                         else f"[{_fmt(h['conf_low'], digits)}, {_fmt(h['conf_high'], digits)}]")
                elif line == "ri_conf_int":
                    lo, hi = h.get("ri_conf_low"), h.get("ri_conf_high")
                    s = ("" if not (_known(lo) or _known(hi))
                         else f"{_LINE_PREFIX['ri_conf_int']}[{_fmt(lo, digits)}, {_fmt(hi, digits)}]")
                else:
                    v = h.get(line)
                    s = "" if v is None or pd.isna(v) else f"{_LINE_PREFIX[line]}{_fmt(v, digits)}"
                vals.append(s)
            index.append((row, line))
            grid.append(vals)
    mean_varies = False
    for f in footer:
        vals = []
        for name, r in zip(cols, res):
            sub = data[data["model"] == name]
            if sub.empty:  # every row of this model filtered out: describe the model anyway
                sub = data_all[data_all["model"] == name]
            first = sub.iloc[0]
            if f == "outcome":
                own = getattr(r, "outcome", None)
                uniq = [own] if isinstance(own, str) else list(dict.fromkeys(sub["outcome"]))
                vals.append(", ".join(str(u) for u in uniq))
            elif f == "horizon":
                vals.append(_horizon_text(sub["horizon"].tolist()))
            elif f == "control_mean":
                text, varies = _common_text(sub["control_mean"].tolist(), lambda v: _fmt(v, digits))
                mean_varies |= varies
                vals.append("" if varies else text)
            elif f in ("nobs", "n_treated", "n_control"):
                own = getattr(r, f, None)
                def count(v: Any) -> str:
                    if pol is None:
                        return str(int(v))
                    return str(pol.round_count(int(v))) if pol.count_ok(int(v)) else "·"

                if isinstance(own, (int, np.integer)) and not isinstance(own, bool):
                    vals.append(count(own))  # the whole sample, not one row's part of it
                else:
                    vals.append(_common_text(sub[f].tolist(), count)[0])
            elif f == "cov_type":
                ct = first["cov_type"]
                vals.append("" if ct is None else str(ct))
        index.append((_FOOTER_LABELS[f], "footer"))
        grid.append(vals)
    cells = pd.DataFrame(grid, index=pd.MultiIndex.from_tuples(index, names=["row", "line"]),
                         columns=cols)

    notes = []
    if "std_error" in show:
        notes.append("Standard errors in parentheses.")
    if "conf_int" in show:
        lv = sorted({round(float(getattr(r, "level", 0.95)) * 100) for r in res})
        notes.append(f"{'/'.join(str(x) for x in lv)}% confidence intervals in brackets.")
    if mean_varies:
        notes.append("Control mean left blank where it differs between the rows of a model.")
    if stars:
        legend = ", ".join(f"{'*' * (i + 1)} p < {lv:g}" for i, lv in enumerate(levels))
        src = {"p_value": "the model-based p-value", "ri_p_value": "the randomization p-value",
               "adj_p_value": "the p-value adjusted for multiple testing"}[pvalue]
        notes.append(f"{legend}; stars from {src}.")
    if pol is not None and rec is not None:
        if withheld:
            notes.append(f"· withheld: fewer than {pol.min_persons} persons or "
                         f"{pol.min_residual_df} residual degrees of freedom (disclosure control).")
        if any(f in footer for f in ("nobs", "n_treated", "n_control")):
            notes.append(f"Counts rounded to a multiple of {pol.rounding}.")
        record = rec.record()
    else:
        record = None
    return ComparisonTable(data=data, cells=cells, notes=tuple(notes), title=title, record=record)
