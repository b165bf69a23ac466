"""run_plan: fit every estimand of a plan, re-randomize, adjust per family, record provenance.

Seeds
-----
The randomization draws of estimand ``e`` use the seed

.. math:: s_e = \\lfloor \\mathrm{SHA256}(\\texttt{"<plan seed>:<e>"})_{0..7} / 2 \\rfloor

(the first 8 bytes of the digest as a big-endian integer, halved to 63 bits), and
the joint draws of family ``f`` (Westfall–Young, Romano–Wolf) the seed of
``"<plan seed>:family:<f>"``. An estimand's p-value therefore depends only on the
data, the plan seed, its id and its own options: adding, removing or reordering other
estimands changes none of them. (Estimand ids never hold ``:``, so the two kinds of
labels cannot collide.)

Each estimand is re-randomized on its own draws (one
:func:`~ips_impact.randomization_inference` call per estimand). The step-down methods
need the *joint* distribution of the family's statistics, so they re-draw the
assignment once more for the whole family, with the family's seed, through
:func:`~ips_impact.adjust_pvalues`; the p-value methods (Holm, BH…) adjust the
per-estimand randomization (or model-based) p-values of the family.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ips_impact.errors import IpsImpactError, PlanError
from ips_impact.plan.analysis import Analysis, Entry, study_info
from ips_impact.plan.provenance import build_provenance
from ips_impact.plan.schema import NO_RANDOMIZATION, AnalysisPlan, EstimandSpec

__all__ = ["run_plan", "derive_seed"]


def derive_seed(seed: int, label: str) -> int:
    """63-bit seed derived from the plan seed and a label (an estimand id or ``family:NAME``)."""
    d = hashlib.sha256(f"{int(seed)}:{label}".encode()).digest()
    return int.from_bytes(d[:8], "big") >> 1


def _outcome_columns(study: Any, spec: EstimandSpec) -> tuple[str, list[str]]:
    """Return (table, columns): where the estimand's outcome must be."""
    if spec.estimator == "spillover":
        members = getattr(study, "members", None)
        return ("members", list(members.columns) if members is not None else [])
    return ("panel", list(study.panel.columns))


def _column_list(columns: list[str], limit: int = 12) -> str:
    keys = ("person_id", "index_person_id", "household_id", "period", "k")
    names = [c for c in columns if c not in keys]
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f", … (+{more} more)" if more > 0 else "")


def _fit(study: Any, spec: EstimandSpec) -> Any:
    import ips_impact as ii

    fn = getattr(ii, spec.estimator)
    return fn(study, spec.outcome, **spec.kwargs())


def _too_few(result: Any, min_per_arm: int) -> str | None:
    t = result.tidy()
    if not len(t):
        return "the estimator returned no row"
    nt, nc = int(t["n_treated"].max()), int(t["n_control"].max())
    if min(nt, nc) < min_per_arm:
        return (
            f"too few persons per arm ({nt} IPS, {nc} control; the plan requires at least "
            f"{min_per_arm} in each arm)"
        )
    return None


def _progress_bar(total: int, progress: bool | str) -> Any:
    on = sys.stderr.isatty() if progress == "auto" else bool(progress)
    if not on:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="run_plan", unit="estimand", file=sys.stderr, leave=False)


def run_plan(
    study: Any,
    plan: AnalysisPlan | str | Path | None = None,
    *,
    n_permutations: int | None = None,
    seed: int | None = None,
    progress: bool | str = "auto",
    exploratory: Iterable[Mapping[str, Any]] = (),
    inputs: Mapping[str, str | Path] | None = None,
    column_map: str | Path | None = None,
    timings: dict[str, float] | None = None,
    n_jobs: int = 1,
) -> Analysis:
    """Run a pre-registered analysis plan on a study.

    For every estimand, in plan order: fit the estimator with the plan's options; if it
    refuses (a typed :class:`~ips_impact.errors.IpsImpactError`), the outcome is absent
    or an arm has fewer than ``plan.min_per_arm`` persons, the entry carries the reason
    instead of a result — nothing is skipped silently. Then randomization p-values on
    the estimand's own draws (seed derived from (plan seed, id), see the module
    docstring), and, per family, adjusted p-values by the family's method.

    Parameters
    ----------
    study : Study
        The study (from :func:`ips_impact.load_study` or ``Study.from_frames``).
    plan : AnalysisPlan, path or None
        The plan, a TOML file, or ``None`` for :meth:`AnalysisPlan.default`.
    n_permutations, seed : int, optional
        Override the plan's randomization draws and seed (recorded in the provenance).
        ``n_permutations=0`` skips randomization inference.
    progress : bool or "auto"
        Progress bar on standard error (tqdm): ``"auto"`` shows it only when standard
        error is a terminal, ``True`` always, ``False`` never.
    exploratory : iterable of dict
        Estimands run outside the plan (the keys of an ``[[estimands]]`` block). They are
        tagged ``"exploratory"`` whatever they say and may not join a family of the
        plan that holds primary estimands.
    inputs : mapping, optional
        ``{table: file}`` the study was read from, hashed into the provenance (the
        command line passes it). Without it, a public ``study.sources`` is used, else a
        canonical serialisation of the study's frames.
    column_map : path, optional
        Column-mapping file used to read the inputs (hashed into the provenance).
    timings : dict, optional
        Filled with seconds per step: each estimator's fit (``"itt"``…), its
        randomization inference (``"itt RI"``…) and the family adjustments
        (``"families"``); summed over workers.
    n_jobs : int
        Worker processes (forked; 1 = in this process). The results do not depend on
        it: every estimand has its own seed.

    Returns
    -------
    Analysis
    """
    import ips_impact as ii

    if plan is None:
        plan = AnalysisPlan.default()
    elif isinstance(plan, (str, Path)):
        plan = AnalysisPlan.from_toml(plan)
    if not isinstance(plan, AnalysisPlan):
        raise PlanError(
            f"plan must be an AnalysisPlan or a TOML path; you passed a {type(plan).__name__}",
            fix="use AnalysisPlan.from_toml(path) or AnalysisPlan.default()",
        )
    n_perm = plan.n_permutations if n_permutations is None else n_permutations
    base_seed = plan.seed if seed is None else seed
    for name, v in (("n_permutations", n_perm), ("seed", base_seed)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise PlanError(
                f"{name} must be a non-negative integer; you passed {v!r}",
                fix=f"use e.g. {name}=2000",
            )

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise PlanError(
            f"n_jobs must be a positive integer; you passed {n_jobs!r}", fix="use n_jobs=2"
        )
    freq = str(getattr(study, "frequency", ""))
    if plan.frequency is not None and freq != plan.frequency:
        raise PlanError(
            f"the plan's event times are in periods of frequency {plan.frequency!r} and the "
            f"study's panel has frequency {freq!r}: k = 6 would not mean the same time",
            fix="run a plan written for this frequency (set frequency = "
            f'"{freq}" and its horizons), or read the panel at the plan\'s frequency',
        )
    registered = set(plan.ids)
    extra = [dict(b, tag="exploratory") for b in exploratory]
    if extra:
        primary_families = {f.name for f in plan.families if plan.family_tag(f.name) == "primary"}
        for b in extra:
            if b.get("family") in primary_families:
                raise PlanError(
                    f"an exploratory estimand ({b.get('estimator')} of {b.get('outcome')!r}) "
                    f"cannot join the primary family '{b['family']}'",
                    fix="leave family unset or use a secondary or exploratory family",
                )
        full = plan.with_estimands(extra)
    else:
        full = plan
    timings = timings if timings is not None else {}

    def clock(key: str, t0: float) -> None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0

    bar = _progress_bar(len(full.estimands), progress)
    entries: dict[str, Entry] = {}
    try:
        for entry, spent in _run_all(study, full, n_perm, base_seed, n_jobs):
            entries[entry.id] = entry
            for step, secs in spent.items():
                timings[step] = timings.get(step, 0.0) + secs
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(entry.id, refresh=False)
    finally:
        if bar is not None:
            bar.close()
    t0 = time.perf_counter()
    entries = _adjust_families(ii, study, full, entries, n_perm, base_seed)
    clock("families", t0)

    # The plan as registered (exploratory extras are entries, not part of the plan's hash).
    out_entries = [entries[e.id] for e in full.estimands]
    for e in out_entries:
        if e.id not in registered and e.tag != "exploratory":  # pragma: no cover - guarded above
            raise PlanError(
                f"estimand '{e.id}' run outside the plan must be exploratory", fix="report this bug"
            )
    info = study_info(study)
    prov = build_provenance(
        study,
        plan_sha256=plan.sha256(),
        seed=base_seed,
        n_permutations=n_perm,
        inputs=inputs,
        column_map=column_map,
        ledger=info.get("ledger"),
        exploratory=[e.to_plain() for e in full.estimands if e.id not in registered],
    )
    return Analysis(plan=plan, entries=tuple(out_entries), provenance=prov, study_info=info)


# The work of the worker processes: set before they are forked (never changed after).
_WORK: tuple[Any, AnalysisPlan, int, int] | None = None


def _worker(i: int) -> tuple[int, Entry, dict[str, float]]:
    from threadpoolctl import threadpool_limits

    assert _WORK is not None
    study, plan, n_perm, base_seed = _WORK
    # One BLAS thread per worker: the workers already share the cores.
    with threadpool_limits(limits=1):
        entry, spent = _run_one(study, plan.estimands[i], plan, n_perm, base_seed)
    return i, entry, spent


def _run_all(
    study: Any, plan: AnalysisPlan, n_perm: int, base_seed: int, n_jobs: int
) -> Iterator[tuple[Entry, dict[str, float]]]:
    """Yield (entry, seconds by step) for every estimand, in plan order.

    With ``n_jobs > 1`` the estimands are shared among forked worker processes. Every
    estimand has its own seed, so the results are the same whatever the number of
    workers; they are yielded in plan order.
    """
    n = len(plan.estimands)
    if n_jobs <= 1 or n < 2 or "fork" not in mp.get_all_start_methods():
        for spec in plan.estimands:
            yield _run_one(study, spec, plan, n_perm, base_seed)
        return
    global _WORK
    _WORK = (study, plan, n_perm, base_seed)
    try:
        ctx = mp.get_context("fork")
        # Longest estimands first would balance better, but the order of submission does
        # not change any result; chunks of one keep the two workers busy to the end.
        with ctx.Pool(min(n_jobs, n)) as pool:
            done: dict[int, tuple[Entry, dict[str, float]]] = {}
            nxt = 0
            for i, entry, spent in pool.imap_unordered(_worker, range(n), chunksize=1):
                done[i] = (entry, spent)
                while nxt in done:
                    yield done.pop(nxt)
                    nxt += 1
    finally:
        _WORK = None


def _run_one(
    study: Any,
    spec: EstimandSpec,
    plan: AnalysisPlan,
    n_perm: int,
    base_seed: int,
) -> tuple[Entry, dict[str, float]]:
    import ips_impact as ii

    spent: dict[str, float] = {}

    def clock(key: str, t0: float) -> None:
        spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

    common: dict[str, Any] = dict(
        id=spec.id,
        tag=spec.tag,
        family=spec.family,
        estimator=spec.estimator,
        outcome=spec.outcome,
        options=spec.options,
    )
    table, columns = _outcome_columns(study, spec)
    if spec.outcome not in columns:
        return Entry(
            **common,
            reason=f"outcome '{spec.outcome}' is absent from the study's {table} "
            f"(its columns include {_column_list(columns)})",
        ), spent
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = _fit(study, spec)
        except IpsImpactError as exc:
            clock(spec.estimator, t0)
            reason = f"{spec.estimator} refused ({type(exc).__name__}): {exc}"
            return Entry(**common, reason=reason), spent
    clock(spec.estimator, t0)
    warned = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    few = _too_few(result, plan.min_per_arm)
    if few is not None:
        return Entry(**common, reason=few, warnings=warned), spent
    notes: list[str] = []
    eseed = derive_seed(base_seed, spec.id)
    if n_perm > 0 and spec.estimator not in NO_RANDOMIZATION:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = ii.randomization_inference(
                    study, result, n_permutations=n_perm, seed=eseed
                )
        except IpsImpactError as exc:
            notes.append(f"no randomization p-value ({type(exc).__name__}: {exc})")
        clock(f"{spec.estimator} RI", t0)
    elif n_perm > 0:
        notes.append(
            "no randomization p-value: randomization inference is not available "
            f"for {spec.estimator}"
        )
    return Entry(
        **common,
        result=result,
        notes=tuple(notes),
        warnings=warned,
        seed=eseed if n_perm > 0 else None,
    ), spent


def _replace(entry: Entry, **changes: Any) -> Entry:
    import dataclasses

    return dataclasses.replace(entry, **changes)


def _adjust_families(
    ii: Any, study: Any, plan: AnalysisPlan, entries: dict[str, Entry], n_perm: int, base_seed: int
) -> dict[str, Entry]:
    out = dict(entries)
    for fam in plan.families:
        members = [out[e.id] for e in plan.estimands if e.family == fam.name]
        filled = [e for e in members if e.result is not None]
        if not filled:
            continue
        if fam.resampling:
            if n_perm == 0:
                for e in filled:
                    out[e.id] = _replace(
                        e,
                        notes=e.notes
                        + (
                            f"no adjusted p-value: {fam.method} needs randomization draws "
                            "(n_permutations = 0)",
                        ),
                    )
                continue
            usable = filled
            kwargs: dict[str, Any] = dict(
                study=study,
                n_permutations=n_perm,
                seed=derive_seed(base_seed, f"family:{fam.name}"),
            )
        else:
            col = fam.pvalue
            usable = [e for e in filled if col in e.result.tidy().columns]  # type: ignore[union-attr]
            for e in filled:
                if e not in usable:
                    out[e.id] = _replace(
                        e,
                        notes=e.notes
                        + (f"left out of family '{fam.name}' ({fam.method}): it has no {col}",),
                    )
            kwargs = dict(pvalue=col)
        if not usable:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                adjusted = ii.adjust_pvalues(
                    [e.result for e in usable], method=fam.method, family=fam.name, **kwargs
                )
        except IpsImpactError as exc:
            for e in usable:
                out[e.id] = _replace(
                    out[e.id],
                    notes=out[e.id].notes
                    + (
                        f"no adjusted p-value: {fam.method} failed for family '{fam.name}' "
                        f"({type(exc).__name__}: {exc})",
                    ),
                )
            continue
        for e, r in zip(usable, adjusted):
            out[e.id] = _replace(out[e.id], result=r)
    return out
