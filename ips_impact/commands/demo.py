"""``ips-impact demo``: simulate → analyse → report on the embedded synthetic sample."""

from __future__ import annotations

import argparse
from typing import Any

from ips_impact.cli import existing_path, output_dir, positive_int, progress


def register(subparsers: Any) -> None:
    """Add the ``demo`` command."""
    d = subparsers.add_parser("demo",
                              help="simulate → analyse → report on the embedded synthetic sample")
    d.add_argument("--out", type=output_dir, default="demo_output",
                   help="folder for the report and figures")
    d.add_argument("--seed", type=int, default=2018, help="seed of the synthetic trial")
    d.add_argument("--n-permutations", type=positive_int, default=2000,
                   help="re-draws of the design for randomization inference")
    d.add_argument("--data", type=existing_path, default=None,
                   help="read this delivery folder (e.g. synthetic_data) instead of simulating a trial")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ips-impact demo``."""
    from ips_impact.demo import run_demo

    return run_demo(out=args.out, seed=args.seed, n_permutations=args.n_permutations,
                    progress=progress(args), data=args.data)
