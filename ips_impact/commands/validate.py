"""``ips-impact validate``: read a delivery, validate and link it, print the reports."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from ips_impact.cli import add_engine_options, engine_options, existing_file, existing_path, progress


def register(subparsers: Any) -> None:
    """Add the ``validate`` command."""
    v = subparsers.add_parser(
        "validate",
        help="validate and link a delivery (folder of tables); print the linkage report and ledger")
    v.add_argument("path", type=existing_path,
                   help="folder holding assignment.* and panel.* (csv, parquet, xlsx)")
    v.add_argument("--column-map", type=existing_file, default=None,
                   help="TOML mapping file of the delivery (column names, read options, recodings)")
    v.add_argument("--frequency", default=None, choices=["Q", "M", "Y", "W", "int"],
                   help="panel period frequency (detected when omitted)")
    v.add_argument("--strict", action="store_true", default=False,
                   help="fail (exit 2) when validation raises any warning")
    add_engine_options(v)
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ips-impact validate``."""
    from ips_impact.errors import DataContractError, IpsImpactWarning
    from ips_impact.study import load_study

    load_options = engine_options(args)  # a bad combination is refused before any reading
    progress(args)(f"reading and validating {args.path}"
                   + (" with DuckDB" if load_options["engine"] == "duckdb" else ""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IpsImpactWarning)
        study = load_study(args.path, frequency=args.frequency, column_map=args.column_map, **load_options)
    print(study)
    print()
    print(study.linkage_report())
    print()
    print(study.consort())
    print()
    print(study.ledger)
    ours = [w for w in caught if issubclass(w.category, IpsImpactWarning)]
    for w in ours:
        print(f"warning: {w.category.__name__}: {w.message}")
    if args.strict and ours:
        raise DataContractError(
            f"{len(ours)} warning{'s' if len(ours) > 1 else ''} raised while validating (--strict)",
            fix="resolve the warnings listed above, or run without --strict.",
        )
    return 0
