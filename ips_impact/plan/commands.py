"""``ips-impact run``, ``ips-impact diff`` and ``ips-impact plan``.

``run PATH --out DIR [--plan PLAN] [--column-map F] [--engine duckdb] [--n-permutations N] [--seed S]``
    read and validate the delivery in PATH, run the plan (default: the registered
    analysis shipped with the package), save the Analysis to DIR atomically, print its
    summary. Exit 2 on a data, design or plan error; with ``--strict`` also when an
    estimand of the plan could not be filled.
``diff DIR_A DIR_B [--rtol R] [--atol A]``
    which estimands changed between two saved analyses and by how much; exit 1 when any
    value differs beyond the tolerance (so that a CI job can guard a published analysis).
``plan --default`` / ``plan --check PLAN``
    print the shipped plan (a starting point: ``ips-impact plan --default > plan.toml``),
    or validate a plan file and list its estimands.

Each handler returns the exit code; :class:`~ips_impact.errors.IpsImpactError` is left
to the dispatcher (exit 2); a usage mistake (missing file, bad number) exits 64.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ips_impact.cli import add_engine_options, engine_options, nonnegative_int, positive_int

__all__ = ["register", "run_command", "diff_command", "plan_command"]

EXIT_DIFFERS = 1
EXIT_DATA = 2
EXIT_USAGE = 64


class _Usage(Exception):
    """A mistake on the command line (reported with exit code 64)."""


def _say(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def _usage_guard(handler: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except _Usage as exc:
            print(f"ips-impact {args.command}: usage error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``run``, ``diff`` and ``plan`` commands."""
    r = subparsers.add_parser(
        "run", help="run an analysis plan on a delivery and save the Analysis"
    )
    r.add_argument("path", type=Path, help="folder holding assignment.* and panel.* (csv, parquet)")
    r.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder to write the Analysis to (replaced atomically)",
    )
    r.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="analysis plan (TOML); default: the registered analysis shipped with ips_impact",
    )
    r.add_argument(
        "--column-map", type=Path, default=None, help="TOML mapping file of the delivery"
    )
    add_engine_options(r)
    r.add_argument(
        "--frequency",
        default=None,
        choices=["Q", "M", "Y", "W", "int"],
        help="panel period frequency (detected when omitted)",
    )
    r.add_argument(
        "--n-permutations",
        type=nonnegative_int,
        default=None,
        help="randomization draws per estimand (default: the plan's; 0: none)",
    )
    r.add_argument(
        "--seed", type=nonnegative_int, default=None, help="seed of the analysis (default: the plan's)"
    )
    r.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="worker processes (the results do not depend on it)",
    )
    r.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: only on a terminal)",
    )
    r.add_argument(
        "--strict",
        action="store_true",
        default=False,
        help="exit 2 when an estimand of the plan could not be filled",
    )
    r.set_defaults(func=run_command)

    d = subparsers.add_parser("diff", help="compare two saved analyses; exit 1 beyond tolerance")
    d.add_argument("a", type=Path, metavar="DIR_A", help="a saved analysis (e.g. the new run)")
    d.add_argument(
        "b", type=Path, metavar="DIR_B", help="the reference analysis (e.g. the published one)"
    )
    d.add_argument("--rtol", type=_tolerance, default=1e-6, help="relative tolerance")
    d.add_argument("--atol", type=_tolerance, default=1e-12, help="absolute tolerance")
    d.set_defaults(func=diff_command)

    p = subparsers.add_parser("plan", help="print the default analysis plan, or check a plan file")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--default",
        action="store_true",
        default=False,
        help="print the registered analysis shipped with ips_impact (TOML)",
    )
    g.add_argument(
        "--check",
        type=Path,
        default=None,
        metavar="PLAN",
        help="validate a plan file and list its estimands",
    )
    p.set_defaults(func=plan_command)


@_usage_guard
def run_command(args: argparse.Namespace) -> int:
    """Run ``ips-impact run``."""
    from ips_impact.io.readers import find_table_files
    from ips_impact.plan.run import run_plan
    from ips_impact.plan.schema import AnalysisPlan
    from ips_impact.study import load_study

    if not args.path.is_dir():
        raise _Usage(f"{str(args.path)!r} is not a folder (it must hold assignment.* and panel.*)")
    for name in ("plan", "column_map"):
        f = getattr(args, name)
        if f is not None and not Path(f).is_file():
            raise _Usage(f"--{name.replace('_', '-')} {str(f)!r} is not an existing file")
    if args.out.exists() and not args.out.is_dir():
        raise _Usage(f"--out {str(args.out)!r} is an existing file, not a folder")
    load_options = engine_options(args)
    t0 = time.perf_counter()
    plan = AnalysisPlan.from_toml(args.plan) if args.plan is not None else AnalysisPlan.default()
    _say(args, f"plan: {plan.name} ({len(plan.estimands)} estimands)")
    _say(args, f"reading and validating {args.path}"
         + (" with DuckDB" if load_options["engine"] == "duckdb" else ""))
    study = load_study(args.path, frequency=args.frequency, column_map=args.column_map, **load_options)
    inputs = find_table_files(args.path)
    progress: bool | str = "auto" if args.progress is None else bool(args.progress)
    if getattr(args, "quiet", False):
        progress = False
    timings: dict[str, float] = {}
    t_run = time.perf_counter()
    analysis = run_plan(
        study,
        plan,
        n_permutations=args.n_permutations,
        seed=args.seed,
        progress=progress,
        inputs=inputs,
        column_map=args.column_map,
        timings=timings,
        n_jobs=args.jobs,
    )
    t_save = time.perf_counter()
    analysis.save(args.out)
    t_end = time.perf_counter()
    print(analysis.summary())
    timings["load"] = t_run - t0
    timings["save"] = t_end - t_save
    _say(args, "time per step (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    _say(args, f"analysis saved to {args.out} in {t_end - t0:.1f} s")
    n_dev = len(analysis.deviations())
    if args.strict and n_dev:
        print(
            f"ips-impact run: {n_dev} estimand(s) of the plan not filled (--strict)",
            file=sys.stderr,
        )
        return EXIT_DATA
    return 0


@_usage_guard
def diff_command(args: argparse.Namespace) -> int:
    """Run ``ips-impact diff``."""
    from ips_impact.plan.diff import diff_analyses

    for name in ("a", "b"):
        f = getattr(args, name)
        if not (Path(f) / "manifest.json").is_file():
            raise _Usage(
                f"{str(f)!r} is not a saved analysis (no manifest.json); write one with "
                "`ips-impact run PATH --out DIR`"
            )
    d = diff_analyses(args.a, args.b, rtol=args.rtol, atol=args.atol)
    print(d.summary())
    return 0 if d.within_tolerance else EXIT_DIFFERS


@_usage_guard
def plan_command(args: argparse.Namespace) -> int:
    """Run ``ips-impact plan``."""
    from ips_impact.plan.schema import AnalysisPlan, default_plan_text

    if args.default:
        sys.stdout.write(default_plan_text())
        return 0
    if args.check is not None:
        if not Path(args.check).is_file():
            raise _Usage(f"--check {str(args.check)!r} is not an existing file")
        plan = AnalysisPlan.from_toml(args.check)
        print(plan.summary())
        return 0
    raise _Usage("give --default (print the shipped plan) or --check PLAN (validate a plan file)")
