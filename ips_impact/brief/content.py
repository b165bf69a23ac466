"""The content of a brief, in one language, built from an ``Analysis`` only.

:func:`build` reads the fitted results of the analysis (never a number typed by
hand), applies the disclosure policy, and returns a :class:`Brief`: sections of
:class:`~ips_impact.brief.catalogue.Text` (numbers traced to their result), figures and
a provenance footer. The renderers (:mod:`ips_impact.brief.render`) only lay it out.

What goes in, in this order: headline findings for the **primary** estimands (two to
four, marked), the effect over time, time to a first job, regional effects, household
spillovers, the DI benefit per participant and per 100 participants, a methods box,
caveats (small regions, conditional comparisons, deviations from the plan) and the
provenance footer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ips_impact import units
from ips_impact.brief import figures
from ips_impact.brief.catalogue import Catalogue, Num, Text, compose, load_catalogue
from ips_impact.brief.fmt import Formatter
from ips_impact.disclosure import DisclosurePolicy, DisclosureRecord, RecordBuilder
from ips_impact.study import CONSORT_ANALYSED as ANALYSED

__all__ = ["Brief", "Section", "Figure", "build", "displayed"]

#: Headline findings per brief (the issue asks for two to four).
MAX_HEADLINES = 4
#: Participants per "in every N" phrase.
PER = 100
#: A region with fewer participants than this gets an imprecision caveat.
SMALL_REGION = 200
#: Adjusted p-value at or above which a headline says the difference may be chance.
SIGNIFICANCE = 0.05
#: Shown decimals of a p-value.
P_DIGITS = 3


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure: SVG (HTML, PDF, Markdown), caption; PNG (Word) drawn on demand."""

    key: str
    svg: str
    draw: Callable[[], Any] = dataclasses.field(repr=False, compare=False)
    caption: Text = Text(())

    @property
    def png(self) -> bytes:
        """PNG bytes (drawn again: only Word needs them)."""
        return figures.render_figure(self.draw(), "png")


def _figure(key: str, draw: Callable[[], Any], caption: Text) -> Figure:
    return Figure(key, figures.render_figure(draw(), "svg"), draw, caption)


@dataclasses.dataclass(frozen=True)
class Item:
    """A bullet: its text and an optional badge (``primary``)."""

    text: Text
    badge: str | None = None


@dataclasses.dataclass(frozen=True)
class Section:
    """A titled section: paragraphs, bullets, an optional figure; ``boxed`` for methods."""

    key: str
    title: str
    paragraphs: tuple[Text, ...] = ()
    items: tuple[Item, ...] = ()
    figure: Figure | None = None
    boxed: bool = False


@dataclasses.dataclass(frozen=True)
class Brief:
    """A brief in one language, ready to render."""

    lang: str
    title: str
    subtitle: str
    sections: tuple[Section, ...]
    footer: tuple[Text, ...]
    record: DisclosureRecord

    def numbers(self) -> tuple[Num, ...]:
        """Every number of the brief's text, in order."""
        out: list[Num] = []
        for s in self.sections:
            for t in (*s.paragraphs, *(i.text for i in s.items),
                      *((s.figure.caption,) if s.figure else ())):
                out.extend(t.numbers())
        for t in self.footer:
            out.extend(t.numbers())
        return tuple(out)


# ------------------------------------------------------------------------ numbers
#: transform → (scale, decimals) of the displayed value.
TRANSFORMS: dict[str, tuple[float, int]] = {
    "pp": (100.0, 1), "pct": (100.0, 1), "eur": (1.0, 0), "eur100": (100.0, 0),
    "p": (1.0, P_DIGITS), "eur100_10": (100.0, -1), "months": (1.0, 0), "months1": (1.0, 1),
    "count": (1.0, 0),
    "int": (1.0, 0), "share2": (1.0, 2), "num2": (1.0, 2), "lo100": (100.0, 0),
    "hi100": (100.0, 0),
}


def displayed(value: float, transform: str, *, policy: DisclosurePolicy | None = None) -> float:
    """Return the value a reader sees for ``value`` under ``transform``.

    ``pp``/``pct``: ×100, one decimal; ``eur``: whole euros; ``eur100``: ×100 whole
    euros; ``p``: three decimals (``< 0.001`` shows 0.001); ``count``: rounded to the
    policy's multiple; ``lo100``/``hi100``: floor/ceiling of the rounded percentage points.
    """
    scale, digits = TRANSFORMS[transform]
    if transform == "count":
        return float((policy or DisclosurePolicy()).round_count(value))
    if transform == "p" and value < 0.001:
        return 0.001
    v = Formatter.rounded(value * scale, 1 if transform in ("lo100", "hi100") else digits)
    if transform == "lo100":
        return float(math.floor(abs(v)))
    if transform == "hi100":
        return float(math.ceil(abs(v)))
    return v


class _Numbers:
    """Formats numbers of one brief and remembers their source."""

    def __init__(self, fmt: Formatter, policy: DisclosurePolicy) -> None:
        self.fmt = fmt
        self.policy = policy

    def __call__(self, value: float, transform: str, ref: str, *, sign: bool = False,
                 absolute: bool = False) -> Num:
        v = displayed(value, transform, policy=self.policy)
        if absolute:
            v = abs(v)
        digits = TRANSFORMS[transform][1]
        if transform in ("eur", "eur100", "eur100_10"):
            text = self.fmt.money(v, 0)
        elif transform == "p":
            text = self.fmt.p_value(value)
        else:
            text = self.fmt.number(v, digits, sign=sign)
        return Num(text, v, f"{ref}|{transform}" + ("|abs" if absolute else ""))


# ------------------------------------------------------------------------ reading the analysis
def _entries(analysis: Any) -> list[Any]:
    return [e for e in getattr(analysis, "entries", ()) if getattr(e, "result", None) is not None]


def _kind(result: Any) -> str:
    return type(result).__name__


def _estimator(entry: Any) -> str:
    return str(getattr(entry, "estimator", "") or entry.result.spec.get("estimator", ""))


def _horizon_of(e: Any) -> float:
    h = getattr(e.result, "horizon", None)
    if h is None:
        h = e.result.spec.get("horizon")
    return float(h) if isinstance(h, (int, float)) else -math.inf


def _find(analysis: Any, cls: str, *, estimator: str | None = None,
          prefer_outcome: str | None = None, where: Any = None, longest: bool = False) -> Any:
    cands = [e for e in _entries(analysis) if _kind(e.result) == cls
             and (estimator is None or _estimator(e) == estimator)
             and (where is None or where(e))]
    if prefer_outcome:
        pref = [e for e in cands if getattr(e.result, "outcome", None) == prefer_outcome]
        cands = pref or cands
    rank = {"primary": 0, "secondary": 1, "exploratory": 2}
    # primary first; then (when asked) the longest horizon: the brief reports the lasting effect
    cands.sort(key=lambda e: (rank.get(str(getattr(e, "tag", "")), 3),
                              -_horizon_of(e) if longest else 0.0))
    return cands[0] if cands else None


def _frequency(analysis: Any) -> str | None:
    info = getattr(analysis, "study_info", {}) or {}
    f = info.get("frequency")
    return None if f is None else str(f)


def _method(analysis: Any, family: str | None) -> str:
    """Return the adjustment method of a family (from the plan; Holm by default)."""
    plan = getattr(analysis, "plan", None)
    for fam in getattr(plan, "families", None) or ():
        if getattr(fam, "name", None) == family and getattr(fam, "method", None):
            return str(fam.method)
    for source in (getattr(plan, "families", None), (getattr(analysis, "provenance", {}) or {})
                   .get("families")):
        if isinstance(source, Mapping) and family in source:
            fam = source[family]
            m = fam.get("method") if isinstance(fam, Mapping) else getattr(fam, "method", None)
            if m:
                return str(m)
    m = getattr(plan, "adjust_method", None) or getattr(plan, "method", None)
    return str(m) if isinstance(m, str) else "holm"


# ------------------------------------------------------------------------ sections
class _Builder:
    def __init__(self, analysis: Any, lang: str, policy: DisclosurePolicy) -> None:
        self.a = analysis
        self.cat: Catalogue = load_catalogue(lang)
        self.fmt = Formatter(lang)
        self.policy = policy
        self.num = _Numbers(self.fmt, policy)
        self.rec = RecordBuilder(f"brief ({lang})", policy)
        self.freq = _frequency(analysis)
        self.mpp = units.months_per_period(self.freq)
        self.level = self.num(95, "int", "const|level")
        freq_key = self.freq if self.freq in ("Q", "M", "Y", "W") else "int"
        self.period = self.cat[f"period.{freq_key}"]
        self.periods = self.cat[f"period.{freq_key}_plural"]

    # --- small helpers
    def t(self, key: str, **values: Any) -> Text:
        return compose(self.cat[key], **values)

    def months(self, k: Any, ref: str) -> Num:
        m = float(k) * (self.mpp or 1.0)
        return self.num(m, "months", ref)

    def outcome_key(self, outcome: str, word: str) -> str | None:
        key = f"outcome.{outcome}.{word}"
        return key if self.cat.has(key) else None

    def label(self, outcome: str) -> str:
        return self.cat.get(f"outcome.{outcome}.label", outcome)

    def p_sentence(self, r: Any, family: str | None, ref: str) -> Text | None:
        adj = getattr(r, "adj_p_value", None)
        if adj is None or not math.isfinite(adj):
            return None
        method = _method(self.a, family)
        fam = self.cat.get(f"family.{family}", family) if family else "—"
        ri = getattr(r, "ri_p_value", None)
        m = self.cat.get(f"method.{method}", method)
        if ri is not None and math.isfinite(ri):
            return self.t("text.adjusted", family=fam, method=m,
                          p=self.num(adj, "p", f"{ref}|adj_p_value"),
                          ri=self.num(ri, "p", f"{ref}|ri_p_value"))
        return self.t("text.adjusted_no_ri", family=fam, method=m,
                      p=self.num(adj, "p", f"{ref}|adj_p_value"))

    def interval(self, r: Any, ref: str, transform: str) -> tuple[Num, Num]:
        return (self.num(r.conf_low, transform, f"{ref}|conf_low"),
                self.num(r.conf_high, transform, f"{ref}|conf_high"))

    # --- headlines
    def headline(self, e: Any) -> Text | None:
        r, ref = e.result, e.id
        if not self.rec.estimate(e.id, r.nobs, r.df):
            return None
        unit = units.unit_of(r.outcome, frequency=self.freq)
        when = self.t("text.after", months=self.months(r.horizon, f"{ref}|horizon")) \
            if r.horizon is not None and not isinstance(r.horizon, str) else Text(())
        cl, ch = self.interval(r, ref, "pp" if unit.kind == "binary" else "eur")
        if unit.kind == "binary" and self.outcome_key(r.outcome, "more"):
            up = r.estimate >= 0
            lo = self.num(r.estimate, "lo100", f"{ref}|estimate")
            hi = self.num(r.estimate, "hi100", f"{ref}|estimate")
            count = self.t("text.one", n=lo) if lo.value == hi.value else self.t(
                "text.range", lo=lo, hi=hi)
            phrase = self.t(self.outcome_key(r.outcome, "more" if up else "fewer") or "",
                            per=self.num(PER, "int", "const|per"), count=count)
            text = self.t("text.headline_binary", when=when, phrase=phrase,
                          est=self.num(r.estimate, "pp", f"{ref}|estimate", sign=True),
                          cl=cl, ch=ch, level=self.level,
                          ctrl=self.num(r.control_mean, "pct", f"{ref}|control_mean"))
        elif unit.kind == "money" and self.outcome_key(r.outcome, "higher"):
            up = r.estimate >= 0
            amount = self.num(r.estimate, "eur", f"{ref}|estimate", absolute=True)
            phrase = self.t(self.outcome_key(r.outcome, "higher" if up else "lower") or "",
                            amount=amount)
            if not up:  # "EUR 100 lower (95% interval EUR 26 to 175 lower)": one direction
                cl = self.num(r.conf_high, "eur", f"{ref}|conf_high", absolute=True)
                ch = self.num(r.conf_low, "eur", f"{ref}|conf_low", absolute=True)
            text = self.t("text.headline_money", when=when, phrase=phrase, cl=cl, ch=ch,
                          level=self.level,
                          ctrl=self.num(r.control_mean, "eur", f"{ref}|control_mean"))
        else:
            cl, ch = self.interval(r, ref, "num2")
            text = self.t("text.headline_other", when=when, label=self.label(r.outcome),
                          est=self.num(r.estimate, "num2", f"{ref}|estimate", sign=True),
                          cl=cl, ch=ch, level=self.level)
        p = self.p_sentence(r, getattr(e, "family", None), ref)
        if p is not None:
            text = text + " " + p
        # say it in words when the family's adjusted p-value (else the model's) is not small
        shown_p = getattr(r, "adj_p_value", None)
        if shown_p is None or not math.isfinite(shown_p):
            shown_p = r.p_value
        if math.isfinite(shown_p) and shown_p >= SIGNIFICANCE:
            text = text + " " + self.t("text.not_significant")
        return text

    def headlines(self) -> Section | None:
        prim = [e for e in _entries(self.a) if str(getattr(e, "tag", "")) == "primary"
                and _kind(e.result) == "EffectResult"]
        items = []
        for e in prim:
            h = self.headline(e)
            if h is not None:
                items.append(Item(h, self.cat["doc.primary"]))
            if len(items) == MAX_HEADLINES:
                break
        if not items:
            return None
        return Section("headlines", self.cat["sections.headlines"], items=tuple(items))

    # --- effect over time
    def over_time(self) -> Section | None:
        e = _find(self.a, "DynamicEffectResult", prefer_outcome="work_on_di")
        if e is None:
            return None
        r = e.result
        if not self.rec.estimate(e.id, min(x.nobs for x in r.effects),
                                 min(x.df for x in r.effects)):
            return None
        label = self.label(r.outcome)
        paras = []
        if r.pretest is not None and math.isfinite(r.pretest.get("p_value", math.nan)):
            paras.append(self.t("text.over_time_text", label=label, period=self.period,
                                periods=self.periods,
                                p=self.num(r.pretest["p_value"], "p", f"{e.id}|pretest_p")))
        title = self.cat["sections.over_time"] + ": " + label
        band, cat = r.band(), self._fig_cat()
        draw = functools.partial(figures.effect_over_time, band, sup_t=r.sup_t_crit is not None,
                                 cat=cat, fmt=self.fmt, title=title, months_per_period=self.mpp)
        cap = self.t("text.over_time_caption", label=label, level=self.level, period=self.period)
        return Section("over_time", self.cat["sections.over_time"], tuple(paras),
                       figure=_figure("over_time", draw, cap))

    def _fig_cat(self) -> Catalogue:
        # figure labels with the confidence level filled in (no number in the catalogue)
        level = self.level.text
        data = {k: self.cat[f"figure.{k}"].replace("{level}", level).replace("{periods}",
                                                                             self.periods)
                for k in (x.split(".", 1)[1] for x in self.cat.keys() if x.startswith("figure."))}
        return Catalogue(self.cat.lang, {"figure": data})

    # --- survival
    def survival(self) -> Section | None:
        e = _find(self.a, "SurvivalResult", prefer_outcome="employed",
                  where=lambda x: x.result.kind == "time_to_event")
        if e is None:
            return None
        r = e.result
        st = r.statistics
        row = st[st["term"] == "rmst_difference"]
        paras = []
        n = int(st["nobs"].iloc[0]) if len(st) else 0
        if not self.rec.estimate(e.id, n):
            return None
        # the risk set behind the curves' tail: cut the curves where fewer than min_persons remain
        km = r.km
        if "at_risk" in km.columns:
            small = km["at_risk"] < self.policy.min_persons
            if small.any():
                self.rec.suppress(f"{e.id} curves after the risk set falls below "
                                  f"{self.policy.min_persons}", "small risk set")
            km = km[~small]
        if len(row):
            x = row.iloc[0]
            scale = self.mpp or 1.0
            # RMST of the time to a first job: a negative difference means sooner
            sooner = x["estimate"] < 0
            key = "text.survival_text" if sooner else "text.survival_text_later"
            lo, hi = sorted((-x["conf_high"] * scale, -x["conf_low"] * scale)) if sooner else \
                (x["conf_low"] * scale, x["conf_high"] * scale)
            paras.append(self.t(
                key, months=self.num(r.tau * scale, "months", f"{e.id}|tau|months"),
                diff=self.num(abs(x["estimate"]) * scale, "months1",
                              f"{e.id}|rmst_difference|months"),
                cl=self.num(lo, "months1", f"{e.id}|rmst_difference_ci_low|months"),
                ch=self.num(hi, "months1", f"{e.id}|rmst_difference_ci_high|months"),
                level=self.level))
        title = self.cat["sections.survival"]
        draw = functools.partial(figures.found_job, km, cat=self._fig_cat(), fmt=self.fmt,
                                 title=title, months_per_period=self.mpp)
        cap = self.t("text.survival_caption")
        return Section("survival", title, tuple(paras), figure=_figure("survival", draw, cap))

    # --- regions
    def regions(self) -> tuple[Section | None, list[Text]]:
        e = _find(self.a, "HeterogeneityResult", prefer_outcome="work_on_di", longest=True,
                  where=lambda x: x.result.spec.get("by", "region") == "region")
        if e is None:
            return None, []
        r = e.result
        eff = r.effects
        rows, caveats, paras = [], [], []
        counts = {str(g): int(n) for g, n in zip(eff["subgroup"], eff["nobs"])}
        suppressed = self.policy.suppress_cells(counts)
        for _, x in eff.iterrows():
            g = str(x["subgroup"])
            name = self.cat.get(f"region.{g}", g)
            ok = g not in suppressed and self.rec.estimate(f"{e.id}[{g}]", x["nobs"], x["df"])
            if not ok:
                if g in suppressed:
                    self.rec.suppress(f"{e.id}[{g}]", suppressed[g])
                rows.append({"label": name, "suppressed": True})
                caveats.append(self.t("text.region_small", region=name))
                continue
            n = self.num(x["nobs"], "count", f"{e.id}[{g}]|nobs")
            rows.append({"label": f"{name}\nn = {n.text}", "estimate": x["estimate"],
                         "conf_low": x["conf_low"], "conf_high": x["conf_high"]})
            if x["nobs"] < SMALL_REGION:
                caveats.append(self.t("text.caveat_small_region", region=name, n=n))
        h = r.horizon if hasattr(r, "horizon") else r.spec.get("horizon")
        label = self.label(r.outcome)
        if h is not None and math.isfinite(r.p_value):
            paras.append(self.t("text.regions_text", label=label,
                                months=self.months(h, f"{e.id}|horizon"),
                                p=self.num(r.p_value, "p", f"{e.id}|p_value")))
        overall = _find(self.a, "EffectResult", prefer_outcome=r.outcome,
                        where=lambda x: x.result.horizon == h and _estimator(x) == "itt")
        title = self.cat["sections.regions"] + ": " + label
        draw = functools.partial(
            figures.regional_forest, rows,
            overall=None if overall is None else overall.result.estimate,
            cat=self._fig_cat(), fmt=self.fmt, title=title)
        cap = self.t("text.regions_caption", level=self.level,
                     rounding=self.num(self.policy.rounding, "int", "policy|rounding"))
        return (Section("regions", self.cat["sections.regions"], tuple(paras),
                        figure=_figure("regions", draw, cap)), caveats)

    # --- spillovers
    def spillovers(self) -> Section | None:
        es = [e for e in _entries(self.a) if _estimator(e) == "spillover"
              and _kind(e.result) == "EffectResult"]
        # one sentence per outcome and members, at the longest horizon
        last: dict[tuple[str, str], Any] = {}
        for e in es:
            key = (e.result.outcome, str(e.result.spec.get("members")))
            if key not in last or _horizon_of(e) > _horizon_of(last[key]):
                last[key] = e
        paras = []
        for e in list(last.values())[:3]:
            r = e.result
            if not self.rec.estimate(e.id, r.nobs, r.df):
                continue
            members = r.spec.get("members", "member")
            if isinstance(members, (tuple, list)):
                members = members[0] if len(members) == 1 else "member"
            members = str(members)
            mem = self.cat.get(f"members.{members}", self.cat["members.member"])
            unit = units.unit_of(r.outcome, frequency=self.freq)
            tr = "pp" if unit.kind == "binary" else "eur"
            msg = "text.spill_text" if tr == "pp" else "text.spill_text_money"
            cl, ch = self.interval(r, e.id, tr)
            # the randomization p-value when there is one (households re-drawn as randomized)
            has_ri = r.ri_p_value is not None and math.isfinite(r.ri_p_value)
            p, pref = (r.ri_p_value, "ri_p_value") if has_ri else (r.p_value, "p_value")
            paras.append(self.t(msg, members=mem, label=self.label(r.outcome),
                                noun=self.cat.get(f"outcome.{r.outcome}.noun", r.outcome),
                                per_period=self.cat.get(f"outcome.{r.outcome}.per", ""),
                                months=self.months(r.horizon, f"{e.id}|horizon"),
                                est=self.num(r.estimate, tr, f"{e.id}|estimate", sign=True),
                                cl=cl, ch=ch, level=self.level,
                                p=self.num(p, "p", f"{e.id}|{pref}")))
        if not paras:
            return None
        return Section("spillovers", self.cat["sections.spillovers"], tuple(paras))

    # --- DI benefit
    def benefit(self) -> Section | None:
        cands = [e for e in _entries(self.a) if _kind(e.result) == "EffectResult"
                 and e.result.outcome == "di_benefit" and _estimator(e) == "itt"
                 and isinstance(e.result.horizon, (int, float))]
        if not cands:
            return None
        rank = {"primary": 0, "secondary": 1}
        e = sorted(cands, key=lambda x: (rank.get(str(x.tag), 2), -float(x.result.horizon)))[0]
        r = e.result
        if not self.rec.estimate(e.id, r.nobs, r.df):
            return None
        cl, ch = self.interval(r, e.id, "eur")
        text = self.t("text.benefit_text", months=self.months(r.horizon, f"{e.id}|horizon"),
                      per_person=self.num(r.estimate, "eur", f"{e.id}|estimate"),
                      per_hundred=self.num(r.estimate, "eur100_10", f"{e.id}|estimate"),
                      per=self.num(PER, "int", "const|per"), cl=cl, ch=ch, level=self.level,
                      ctrl=self.num(r.control_mean, "eur", f"{e.id}|control_mean"))
        p = self.p_sentence(r, getattr(e, "family", None), e.id)
        return Section("benefit", self.cat["sections.benefit"],
                       (text,) if p is None else (text, p))

    # --- participants (CONSORT); the stage names are Study.consort()'s
    def participants(self) -> Section | None:
        info = getattr(self.a, "study_info", {}) or {}
        flow = info.get("consort")
        if flow is None or not len(flow):
            return None
        flow = flow.set_index("stage")
        needed = {"randomized", ANALYSED}
        if not needed <= set(flow.index):
            return None

        def n(v: float, item: str) -> str:
            shown = self.rec.count(item, v) if v else 0
            return "—" if shown is None else self.fmt.count(shown)

        arms = []
        for col, key in (("n_ips", "ips"), ("n_control", "control")):
            rnd = int(flow.loc["randomized", col])
            seen = int(flow.loc[ANALYSED, col])
            assigned = self.cat[f"consort.assigned_{key}"]
            box = self.cat["text.box"]
            boxes = [(box.format(label=assigned, n=n(rnd, f"consort {key} randomized")), False),
                     (box.format(label=self.cat["consort.lost"],
                                 n=n(rnd - seen, f"consort {key} lost")), True),
                     (box.format(label=self.cat["consort.analysed"],
                                 n=n(seen, f"consort {key} analysed")), False)]
            if key == "ips" and "started IPS" in flow.index:
                started = int(flow.loc["started IPS", col])
                boxes.append((box.format(label=self.cat["consort.started"],
                                         n=n(started, "consort ips started")), True))
            arms.append({"label": key, "boxes": boxes})
        total = int(flow.loc["randomized", "n_ips"] + flow.loc["randomized", "n_control"])
        top = self.cat["text.box"].format(label=self.cat["consort.randomized"],
                                          n=n(total, "consort randomized"))
        title = self.cat["sections.participants"]
        draw = functools.partial(figures.consort, arms, top=top, title="")  # the section names it
        cap = self.t("text.consort_caption",
                     rounding=self.num(self.policy.rounding, "int", "policy|rounding"))
        return Section("participants", title, (), figure=_figure("participants", draw, cap))

    # --- methods
    def methods(self) -> Section:
        info = getattr(self.a, "study_info", {}) or {}
        prov = getattr(self.a, "provenance", {}) or {}
        paras = []
        n, n1, n0 = info.get("n_persons"), info.get("n_treated"), info.get("n_control")
        if n is not None and n1 is not None and n0 is not None:
            n_strata = info.get("n_strata")
            values = dict(n=self.num(n, "count", "study|n_persons"),
                          n1=self.num(n1, "count", "study|n_treated"),
                          n0=self.num(n0, "count", "study|n_control"),
                          rounding=self.num(self.policy.rounding, "int", "policy|rounding"))
            if n_strata is None:
                paras.append(self.t("text.methods_design_blocks", **values))
            else:
                paras.append(self.t("text.methods_design", **values,
                                    n_strata=self.num(n_strata, "int", "study|n_strata")))
        covs = sorted({str(e.result.spec.get("cov_type")) for e in _entries(self.a)
                       if _kind(e.result) == "EffectResult" and e.result.spec.get("cov_type")})
        paras.append(self.t("text.methods_estimator", cov=", ".join(covs) or "HC2"))
        n_perm = prov.get("n_permutations")
        if n_perm:
            paras.append(self.t("text.methods_ri",
                                n_perm=self.num(n_perm, "int", "provenance|n_permutations")))
        fams = sorted({str(e.family) for e in _entries(self.a) if getattr(e, "family", None)})
        if fams:
            methods = sorted({self.cat.get(f"method.{_method(self.a, f)}", _method(self.a, f))
                              for f in fams})
            paras.append(self.t("text.methods_multiple", method=", ".join(methods)))
        if self.mpp is not None and self.freq == "Q":
            paras.append(self.t("text.methods_time", k=self.num(6, "int", "const|example_k"),
                                months=self.num(6 * self.mpp, "int", "const|example_months")))
        return Section("methods", self.cat["sections.methods"], tuple(paras), boxed=True)

    # --- caveats
    def caveats(self, region_caveats: list[Text]) -> Section:
        items = [Item(t) for t in region_caveats]
        if any(_kind(e.result) == "SurvivalResult" and e.result.kind == "spell"
               or _estimator(e) in ("lee_bounds", "spell_survival") for e in _entries(self.a)):
            items.append(Item(self.t("text.caveat_conditional")))
        if any(str(getattr(e, "tag", "")) != "primary" for e in _entries(self.a)):
            items.append(Item(self.t("text.caveat_exploratory")))
        devs = [e for e in getattr(self.a, "entries", ()) if getattr(e, "result", None) is None]
        for e in devs:
            items.append(Item(self.t("text.caveat_deviation", what=str(e.id),
                                     why=str(getattr(e, "reason", "") or "—"))))
        if not devs:
            items.append(Item(self.t("text.caveat_no_deviation")))
        return Section("caveats", self.cat["sections.caveats"], items=tuple(items))

    # --- footer
    def footer(self) -> tuple[Text, ...]:
        prov = getattr(self.a, "provenance", {}) or {}
        inputs = prov.get("input_hashes") or prov.get("inputs") or prov.get("data") or {}
        if isinstance(inputs, Mapping):
            lines = "\n".join(f"{k}:{inputs[k]}" for k in sorted(inputs))
        else:
            lines = str(inputs)
        data = hashlib.sha256(lines.encode()).hexdigest()[:16] if lines else "—"
        plan = str(prov.get("plan_hash") or prov.get("plan") or "—")[:16]
        versions = prov.get("versions", {}) or {}
        version = str(versions.get("ips_impact", "—")) if isinstance(versions, Mapping) else "—"
        seed = str(prov.get("seed", "—"))
        out = [self.t("text.provenance_text", version=version, plan=plan, data=data, seed=seed),
               self.t("text.disclosure_text",
                      min=self.num(self.policy.min_persons, "int", "policy|min_persons"),
                      rounding=self.num(self.policy.rounding, "int", "policy|rounding"))]
        return tuple(out)

    def build(self) -> Brief:
        region_section, region_caveats = self.regions()
        sections = [self.headlines(), self.over_time(), self.survival(), region_section,
                    self.spillovers(), self.benefit(), self.participants(), self.methods(),
                    self.caveats(region_caveats)]
        return Brief(self.cat.lang, self.cat["doc.title"], self.cat["doc.subtitle"],
                     tuple(s for s in sections if s is not None), self.footer(), self.rec.record())


def build(analysis: Any, lang: str = "nl",
          policy: DisclosurePolicy | str | Mapping[str, Any] | None = None) -> Brief:
    """Build the content of the brief of ``analysis`` in ``lang`` under ``policy``."""
    return _Builder(analysis, lang, DisclosurePolicy.coerce(policy)).build()


def iter_texts(brief: Brief) -> Sequence[Text]:
    """Every Text of a brief (sections, items, captions, footer), in reading order."""
    out: list[Text] = []
    for s in brief.sections:
        out += [*s.paragraphs, *(i.text for i in s.items)]
        if s.figure:
            out.append(s.figure.caption)
    return out + list(brief.footer)
