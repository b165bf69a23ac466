"""``ips-impact brief DIR --lang nl,fr,en --format html,pdf --out OUT``.

Reads a saved Analysis (``ii.load_analysis(DIR)``) and writes one brief per language
and format, ``OUT/brief_<lang>.<format>`` (with the disclosure record beside each).
Exit codes: 0 written, 2 a data, plan or disclosure error, 64 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]

EXIT_DATA, EXIT_USAGE = 2, 64


def _list(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {bad or value!r}; use one or more of {', '.join(allowed)} "
            f"(comma-separated)")
    return items


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``brief`` subcommand to ``subparsers``."""
    from ips_impact.brief.fmt import LANGS
    from ips_impact.brief.render import FORMATS

    p = subparsers.add_parser(
        "brief", help="write policy briefs (nl/fr/en; html/pdf/md/docx) from a saved analysis",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, help="folder written by Analysis.save / ips-impact run")
    p.add_argument("--lang", default="nl,fr,en",
                   help="languages, comma-separated (default nl,fr,en)")
    p.add_argument("--format", default="html,pdf",
                   help=f"formats, comma-separated: {', '.join(FORMATS)} (default html,pdf)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default DIR/briefs)")
    p.add_argument("--policy", type=Path, default=None,
                   help="disclosure policy (TOML); default: 10 persons, counts rounded to 5")
    p.set_defaults(func=run, _langs=LANGS, _formats=FORMATS)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``ips-impact brief``; return the exit code."""
    from ips_impact.brief import _write_many
    from ips_impact.errors import IpsImpactError

    try:
        langs = _list(args.lang, args._langs, "language")
        formats = _list(args.format, args._formats, "format")
    except argparse.ArgumentTypeError as exc:
        print(f"ips-impact brief: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not Path(args.dir).is_dir():
        print(f"ips-impact brief: {args.dir} is not a folder; pass the folder written by "
              "Analysis.save or `ips-impact run`", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or Path(args.dir) / "briefs"
    try:
        from ips_impact import load_analysis

        analysis = load_analysis(args.dir)
        for written in _write_many(analysis, langs=langs, formats=formats, out=out,
                                   policy=args.policy):
            print(written.path)
    except IpsImpactError as exc:
        print(f"ips-impact brief: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_DATA
    return 0
