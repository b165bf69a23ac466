"""``ips-impact power``: simulation-based power and MDE from the command line.

Examples::

    ips-impact power --estimand itt --outcome work_on_di --horizon 6 \\
        --sample-sizes 600,1200 --effect-scales 0,0.5,1 --replicates 200 --out power_out
    ips-impact power --sample-sizes VL=340+WAL=200+BXL=60 --takeup-rate 0.7
    ips-impact power --estimand family --family work_on_di:6,employed:10 --correction holm

Writes ``curve.csv``, ``mde.csv``, ``replicates.csv`` and ``power.png`` to ``--out`` and
prints the summary on standard output; progress goes to standard error. Exit codes:
0 ok, 2 a parameter the library refuses (``IpsImpactError``), 64 a malformed option.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ips_impact.errors import IpsImpactError

__all__ = ["register", "handler"]

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 2, 64


class _Usage(ValueError):
    """A malformed option value (exit 64)."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``power`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "power",
        help="simulation-based power and minimum detectable effect of a planned trial",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--estimand", default="itt", help="itt, rmst, spillover or family (default itt)")
    p.add_argument(
        "--outcome",
        default="work_on_di",
        help="outcome (for rmst: the event, e.g. employed); default work_on_di",
    )
    p.add_argument(
        "--horizon",
        type=int,
        default=6,
        help="quarters since randomization (for rmst: tau); default 6 (18 months)",
    )
    p.add_argument(
        "--family", default=None, help="family members OUTCOME:HORIZON,... (estimand family)"
    )
    p.add_argument("--correction", default="holm", help="bonferroni, holm, bh, by or sharpened-q")
    p.add_argument(
        "--sample-sizes",
        default="1200",
        help="persons randomized: 600,1200 or per region VL=340+WAL=200+BXL=60,...",
    )
    p.add_argument(
        "--effect-scales",
        default="1",
        help="multipliers of the calibrated IPS effect, e.g. 0,0.5,1 (several give the MDE)",
    )
    p.add_argument("--replicates", type=int, default=200, help="simulated trials per grid cell")
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided level of the test")
    p.add_argument("--power", type=float, default=0.8, help="target power of the MDE")
    p.add_argument(
        "--takeup-rate", type=float, default=None, help="share of the IPS arm starting IPS"
    )
    p.add_argument(
        "--params",
        type=Path,
        default=None,
        help="JSON file of SyntheticParams fields (e.g. written by SyntheticParams.to_json)",
    )
    p.add_argument("--seed", type=int, default=0, help="root seed of the simulated trials")
    p.add_argument(
        "--backend",
        default="auto",
        help="auto, serial, processes, dask or a scheduler address tcp://host:8786",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="local processes (default: every core)"
    )
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="directory to resume an interrupted study"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="folder for curve.csv, mde.csv, power.png"
    )
    p.set_defaults(func=handler)
    return p


def _split(text: str, what: str) -> list[str]:
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts:
        raise _Usage(f"--{what} is empty")
    return parts


def _sample_sizes(text: str) -> list[Any]:
    out: list[Any] = []
    for part in _split(text, "sample-sizes"):
        if "=" in part:
            region: dict[str, int] = {}
            for item in part.split("+"):
                key, _, value = item.partition("=")
                try:
                    region[key.strip()] = int(value)
                except ValueError:
                    raise _Usage(f"--sample-sizes: {item!r} is not REGION=PERSONS") from None
            out.append(region)
        else:
            try:
                out.append(int(part))
            except ValueError:
                raise _Usage(f"--sample-sizes: {part!r} is not a whole number of persons") from None
    return out


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(t) for t in _split(text, what)]
    except ValueError:
        raise _Usage(f"--{what}: {text!r} is not a comma-separated list of numbers") from None


def _family(text: str | None) -> list[tuple[str, int]] | None:
    if text is None:
        return None
    out = []
    for part in _split(text, "family"):
        name, _, h = part.partition(":")
        try:
            out.append((name.strip(), int(h)))
        except ValueError:
            raise _Usage(f"--family: {part!r} is not OUTCOME:HORIZON") from None
    return out


def _params(args: argparse.Namespace) -> Any:
    from ips_impact.synthetic import SyntheticParams

    p = SyntheticParams()
    if args.params is not None:
        try:
            values = json.loads(args.params.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise _Usage(f"--params: cannot read {args.params} as JSON ({exc})") from None
        p = SyntheticParams.from_dict(values.get("params", values))
    if args.takeup_rate is not None:
        p = dataclasses.replace(p, takeup_rate=args.takeup_rate)
    return p


def handler(args: argparse.Namespace) -> int:
    """Run the power study described by ``args``; return the exit code."""
    from ips_impact.power import power

    try:
        res = power(
            args.estimand,
            outcome=args.outcome,
            horizon=args.horizon,
            family=_family(args.family),
            correction=args.correction,
            sample_sizes=_sample_sizes(args.sample_sizes),
            effect_scales=_floats(args.effect_scales, "effect-scales"),
            params=_params(args),
            n_replicates=args.replicates,
            alpha=args.alpha,
            target_power=args.power,
            seed=args.seed,
            backend=args.backend,
            n_workers=args.workers,
            checkpoint=args.checkpoint,
            progress=not getattr(args, "quiet", False),
        )
    except _Usage as exc:
        print(f"ips-impact power: usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IpsImpactError as exc:
        print(f"ips-impact power: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_DATA
    print(res.summary())
    if args.out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        args.out.mkdir(parents=True, exist_ok=True)
        res.curve.to_csv(args.out / "curve.csv", index=False)
        res.mde.to_csv(args.out / "mde.csv", index=False)
        res.replicates.to_csv(args.out / "replicates.csv", index=False)
        ax = res.plot()
        ax.figure.savefig(args.out / "power.png", dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        print(f"wrote {args.out}/curve.csv, mde.csv, replicates.csv, power.png", file=sys.stderr)
    return EXIT_OK
