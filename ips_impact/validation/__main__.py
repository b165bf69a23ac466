"""``python -m ips_impact.validation``: run the validation studies and write the report."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ips_impact.errors import IpsImpactError


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run :func:`~ips_impact.validation.run_validation`, write the page."""
    from ips_impact.validation.studies import STUDIES

    ap = argparse.ArgumentParser(
        prog="python -m ips_impact.validation",
        description="Coverage, size and R parity of every estimator on the synthetic trial.",
    )
    ap.add_argument("--replications", type=int, default=1000, help="replicates per study (default: 1000)")
    ap.add_argument("--seed", type=int, default=20_261_201, help="root seed (default: 20261201)")
    ap.add_argument("--studies", nargs="*", choices=list(STUDIES), default=None,
                    help="studies to run (default: all)")
    ap.add_argument("--backend", default="auto",
                    help="serial, processes, auto or a dask scheduler address (default: auto)")
    ap.add_argument("--workers", type=int, default=None, help="workers (default: one per core)")
    ap.add_argument("--truth-n", type=int, default=100_000,
                    help="persons in the large sample behind the truths (default: 100000)")
    ap.add_argument("--no-parity", action="store_true", help="do not run the R parity tests")
    ap.add_argument("--out", type=Path, default=Path("docs/validation.md"),
                    help="Markdown page to write (default: docs/validation.md)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.replications < 2:
        ap.error("--replications must be at least 2")
    from ips_impact.validation.runner import run_validation

    try:
        report = run_validation(
            replications=args.replications, seed=args.seed, studies=args.studies,
            backend=args.backend, n_workers=args.workers, truth_n=args.truth_n,
            parity=not args.no_parity, progress=not args.quiet,
        )
    except IpsImpactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shown = ["python", "-m", "ips_impact.validation"] + [
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--quiet"
    ]
    report.write(args.out, command=shlex.join(shown))
    inside = [v for v in report.table["inside"] if v is not None]
    print(f"wrote {args.out}: {sum(bool(v) for v in inside)} of {len(inside)} checks inside their band",
          file=sys.stderr)
    return 0 if report.all_inside else 1


if __name__ == "__main__":
    raise SystemExit(main())
