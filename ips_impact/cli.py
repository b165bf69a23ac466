"""The ``ips-impact`` command.

``ips-impact demo``      simulate → analyse → report, on the embedded synthetic sample
``ips-impact simulate``  write a synthetic trial (one parquet file per table)
``ips-impact validate``  read a folder, validate and link it, print the linkage report

Progress goes to standard error; results and reports to standard output / files.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ips_impact.errors import IpsImpactError

__all__ = ["main"]


class _Progress:
    """Stage messages with elapsed time, on stderr (stdout stays clean for results)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ips_impact.synthetic import generate

    progress = _Progress(args.quiet)
    progress(f"simulating {args.n_persons} randomized persons (seed {args.seed})")
    trial = generate(n_persons=args.n_persons, seed=args.seed)
    trial.write(args.out)
    progress(f"wrote {args.out}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ips_impact.study import load_study

    progress = _Progress(args.quiet)
    progress(f"reading and validating {args.path}")
    study = load_study(args.path, frequency=args.frequency, column_map=args.column_map)
    print(study)
    print()
    print(study.linkage_report())
    print()
    print(study.consort())
    print()
    print(study.ledger)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ips_impact.demo import run_demo

    return run_demo(out=Path(args.out), seed=args.seed, n_permutations=args.n_permutations,
                    progress=_Progress(args.quiet))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ips-impact", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a synthetic IPS trial with known truth")
    s.add_argument("--n-persons", type=int, default=1200)
    s.add_argument("--seed", type=int, default=2018)
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=_cmd_simulate)

    v = sub.add_parser("validate", help="validate and link a folder of tables; print the linkage report")
    v.add_argument("path", type=Path)
    v.add_argument("--frequency", default=None, help="Q, M, Y, W or int (detected when omitted)")
    v.add_argument("--column-map", default=None, help="TOML file mapping extract columns to contract names")
    v.set_defaults(func=_cmd_validate)

    d = sub.add_parser("demo", help="simulate → analyse → report on the embedded synthetic sample")
    d.add_argument("--out", default="demo_output")
    d.add_argument("--seed", type=int, default=2018)
    d.add_argument("--n-permutations", type=int, default=2000)
    d.set_defaults(func=_cmd_demo)

    from ips_impact import power_cli

    power_cli.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except IpsImpactError as exc:
        # A data problem is the user's to fix: say what and how, without a traceback.
        print(f"ips-impact: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
