"""``ips-impact simulate``: write a synthetic trial (one parquet file per table)."""

from __future__ import annotations

import argparse
from typing import Any

from ips_impact.cli import output_dir, positive_int, progress
from ips_impact.errors import UsageError

#: Fewest persons for a trial that validates: the generator randomizes within 12 strata
#: (3 regions × 4 enrolment half-years), two persons each at least; a stratum left with
#: one arm is set aside with a warning (tests/test_delivery_order.py validates small trials).
MIN_PERSONS = 24


def register(subparsers: Any) -> None:
    """Add the ``simulate`` command."""
    s = subparsers.add_parser("simulate", help="write a synthetic IPS trial with known truth")
    s.add_argument("--n-persons", type=positive_int, default=1200,
                   help=f"randomized persons, IPS and control together (at least {MIN_PERSONS})")
    s.add_argument("--seed", type=int, default=2018, help="seed of every random draw")
    s.add_argument("--out", type=output_dir, required=True,
                   help="folder to write the parquet files into")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ips-impact simulate``."""
    if args.n_persons < MIN_PERSONS:
        raise UsageError(
            f"--n-persons {args.n_persons} is too small: the trial is randomized within 12 strata "
            f"(3 regions × 4 enrolment half-years), and below {MIN_PERSONS} persons strata hold one "
            "person, who has no one to be compared with",
            fix=f"pass --n-persons {MIN_PERSONS} or more.",
        )
    from threadpoolctl import threadpool_limits

    from ips_impact.synthetic import generate

    say = progress(args)
    say(f"simulating {args.n_persons} randomized persons (seed {args.seed})")
    # One BLAS thread: a multi-threaded matrix product sums in a varying order, which made
    # truth.parquet differ at ~1e-12 between runs; the files must be byte-identical.
    with threadpool_limits(limits=1):
        trial = generate(n_persons=args.n_persons, seed=args.seed)
        trial.write(args.out)
    say(f"wrote {args.out}")
    return 0
