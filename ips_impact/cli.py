"""The ``ips-impact`` command: a dispatcher over commands that register themselves.

Convention for adding a command (one module per command, no edit elsewhere)
----------------------------------------------------------------------------
* Put the command in its own module and give that module a function
  ``register(subparsers) -> None`` that calls ``subparsers.add_parser(name, help=...)``,
  adds its options (every option with ``help=``; defaults are appended to the help text
  automatically) and sets ``parser.set_defaults(func=handler)``.
* The module is found when it lives in the package :mod:`ips_impact.commands`
  (every module there is registered, in alphabetical order), or when its dotted name is
  listed in :data:`COMMAND_MODULES` below (for a command living beside its library code).
* ``handler(args: argparse.Namespace) -> int`` returns the exit code. It checks its
  options **before doing any work** and raises :class:`ips_impact.errors.UsageError` for
  a bad option value or a missing file; data and design problems raise the other
  :class:`ips_impact.errors.IpsImpactError` subclasses. Use the argparse ``type=``
  helpers of this module (:func:`positive_int`, :func:`existing_path`,
  :func:`existing_file`, :func:`output_dir`) so that most mistakes are refused while the
  command line is parsed.
* ``args.quiet`` is always set (``--quiet`` works before or after the command name);
  pass ``progress(args)`` to long work: it prints stage messages on standard error.

Exit codes
----------
====  ==============================================================================
0     success
1     internal error (a bug: please report it; ``--traceback`` shows where); for ``ips-impact
      diff`` also "results differ beyond the tolerance" (what a CI job guards on)
2     data-contract or design error (:class:`~ips_impact.errors.IpsImpactError`)
64    usage error: unknown or bad option, missing file (:class:`~ips_impact.errors.UsageError`)
====  ==============================================================================

A user's mistake never prints a Python traceback. Progress goes to standard error;
results and reports go to standard output or files.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ips_impact.errors import IpsImpactError, UsageError

__all__ = [
    "main",
    "COMMAND_MODULES",
    "EXIT_OK",
    "EXIT_INTERNAL",
    "EXIT_DATA",
    "EXIT_USAGE",
    "positive_int",
    "nonnegative_int",
    "existing_path",
    "existing_file",
    "output_dir",
    "progress",
    "add_engine_options",
    "engine_options",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_DATA = 2
EXIT_USAGE = 64

#: Commands whose module lives outside :mod:`ips_impact.commands` (dotted module names).
COMMAND_MODULES: tuple[str, ...] = ("ips_impact.plan.commands", "ips_impact.brief.commands", "ips_impact.power_cli")


class _UsageExit(Exception):
    """Raised by the parser instead of ``sys.exit(2)`` (code 2 means a data error here)."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageExit(message, self.format_usage())


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep hand-written layouts and append ``(default: …)`` to every option's help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default is None and action.option_strings == []:
            return action.help
        if action.default is None:
            return (action.help or "") + " (default: none)"
        return super()._get_help_string(action)


class _Progress:
    """Stage messages with elapsed time, on stderr (stdout stays clean for results)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)


def progress(args: argparse.Namespace) -> Callable[[str], None]:
    """Return a progress printer that respects ``--quiet``."""
    return _Progress(bool(getattr(args, "quiet", False)))


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--engine`` and the DuckDB settings of :func:`ips_impact.load_study` to a command."""
    parser.add_argument("--engine", default="pandas", choices=["pandas", "duckdb"],
                        help="reader of the delivery: 'duckdb' reads, filters and joins the parquet "
                             "tables in DuckDB, for extracts larger than memory (the same Study)")
    parser.add_argument("--duckdb-memory-limit", default=None, metavar="SIZE",
                        help="with --engine duckdb: memory DuckDB may use, e.g. 8GB "
                             "(default: a quarter of the physical memory)")
    parser.add_argument("--duckdb-temp-directory", default=None, metavar="DIR",
                        help="with --engine duckdb: where DuckDB spills what does not fit "
                             "(default: a temporary folder, removed afterwards)")


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`ips_impact.load_study` from :func:`add_engine_options`' options."""
    engine = getattr(args, "engine", "pandas")
    config = {k: v for k, v in (("memory_limit", getattr(args, "duckdb_memory_limit", None)),
                                ("temp_directory", getattr(args, "duckdb_temp_directory", None)))
              if v is not None}
    if config and engine != "duckdb":
        raise UsageError(f"--duckdb-{next(iter(config)).replace('_', '-')} applies to --engine duckdb only",
                         fix="add --engine duckdb, or drop the DuckDB setting.")
    return {"engine": engine, **({"duckdb_config": config} if config else {})}


# ---------------------------------------------------------------- argparse types
def positive_int(text: str) -> int:
    """Parse an integer ≥ 1 (argparse ``type=``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """Parse an integer ≥ 0 (argparse ``type=``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def existing_path(text: str) -> Path:
    """Parse a file or folder that exists (argparse ``type=``)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    return path


def existing_file(text: str) -> Path:
    """Parse a file that exists, not a folder (argparse ``type=``)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not an existing file"
                                         + (" (it is a folder)" if path.is_dir() else ""))
    return path


def output_dir(text: str) -> Path:
    """Parse a folder to write into: created if absent, refused if a file (argparse ``type=``)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is an existing file, not a folder")
    return path


# ---------------------------------------------------------------- parser
class _Subparsers:
    """Wraps argparse's subparsers so every command gets ``--quiet`` and defaults in its help."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self._action = action
        self._common = common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs["parents"] = [*kwargs.get("parents", []), self._common]
        if "help" in kwargs:
            kwargs.setdefault("description", kwargs["help"])
        parser: argparse.ArgumentParser = self._action.add_parser(name, **kwargs)
        return parser


def _command_modules() -> list[str]:
    import ips_impact.commands as pkg

    found = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    return [f"{pkg.__name__}.{m}" for m in found] + [m for m in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    """Build the parser: global options and every registered command."""
    from ips_impact import __version__

    parser = _Parser(prog="ips-impact",
                     description="Evaluate the Belgian IPS trial on administrative data: simulate, "
                                 "validate a delivery, run an analysis plan, write briefs.",
                     formatter_class=_Formatter,
                     epilog="Exit codes: 0 ok, 1 internal error, 2 data or design error, "
                            "64 usage error.")
    parser.add_argument("--version", action="version", version=f"ips-impact {__version__}")
    parser.add_argument("--quiet", "-q", action="store_true", default=False,
                        help="no progress messages on standard error")
    parser.add_argument("--traceback", action="store_true", default=False,
                        help="on an internal error, print the Python traceback (for bug reports)")
    # The same flags after the command name; SUPPRESS keeps a value given before it.
    common = _Parser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                        help="no progress messages on standard error")
    common.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                        help="on an internal error, print the Python traceback")
    action = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    action.required = True
    subparsers = _Subparsers(action, common)
    for name in _command_modules():
        importlib.import_module(name).register(subparsers)
    return parser


#: The parser under its earlier name (docs/build.py renders the command-line page from it).
_parser = build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except _UsageExit as exc:
        print(exc.usage.rstrip(), file=sys.stderr)
        print(f"ips-impact: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"ips-impact: usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IpsImpactError as exc:
        # A data problem is the user's to fix: say what and how, without a traceback.
        print(f"ips-impact: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("ips-impact: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort of a command line
        print(f"ips-impact: internal error ({type(exc).__name__}: {exc}). This is a bug in "
              "ips_impact; please report it with the command you ran "
              "(--traceback shows where it happened).",
              file=sys.stderr)
        if getattr(args, "traceback", False):
            traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
