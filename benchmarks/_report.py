"""One way for every benchmark to print a figure beside its target, with PASS or FAIL.

``figure("itt ancova, HC2", 0.0047, "s", at_most=0.020)`` prints::

    itt ancova, HC2 ..................... 4.7 ms   (target ≤ 20 ms)   PASS

A figure without a target is printed as information (``info``). Times are given in
seconds and shown in ms below one second; sizes in MB.
"""

from __future__ import annotations

import math

__all__ = ["figure", "figure_ci", "summary"]

_results: list[bool] = []


def _fmt(value: float, unit: str) -> str:
    if unit == "s" and abs(value) < 1.0:
        return f"{value * 1000:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "":
        return f"{value:.2e}"
    return f"{value:,.1f} {unit}".rstrip()


def figure(name: str, value: float, unit: str, *, at_most: float | None = None,
           at_least: float | None = None) -> bool | None:
    """Print one figure with its target and verdict; return the verdict (None: no target)."""
    shown = _fmt(value, unit)
    if at_most is None and at_least is None:
        print(f"{name:.<58} {shown:>12}   (no target)       info", flush=True)
        return None
    if at_most is not None:
        ok = math.isfinite(value) and value <= at_most
        target = f"≤ {_fmt(at_most, unit)}"
    else:
        assert at_least is not None
        ok = math.isfinite(value) and value >= at_least
        target = f"≥ {_fmt(at_least, unit)}"
    _results.append(ok)
    print(f"{name:.<58} {shown:>12}   (target {target})   {'PASS' if ok else 'FAIL'}", flush=True)
    return ok


def figure_ci(name: str, value: float, low: float, high: float, unit: str, *, at_most: float,
              resolution: float) -> bool:
    """Print a noisy figure with its 95% confidence interval, its target and a verdict.

    For a ratio whose true value may equal its target (two processes that run the same
    code), a point estimate against the target is a coin flip. The verdict is therefore
    a test: **PASS** when the interval reaches the target (no evidence that the figure
    exceeds it) *and* is narrow enough to have found an excess (``high - low`` at most
    ``2 * resolution``); **FAIL** when the whole interval lies above the target (the
    figure exceeds it beyond noise, however wide the interval); **INCONCLUSIVE** (not a
    pass) when the interval reaches the target but is too wide to tell: measure more.
    """
    shown = f"{_fmt(value, unit)} [{_fmt(low, unit)}, {_fmt(high, unit)}]"
    if math.isfinite(low) and low > at_most:
        ok, verdict = False, "FAIL"  # above the target beyond noise, however wide the interval
    elif not (math.isfinite(low) and math.isfinite(high)) or high - low > 2 * resolution:
        ok, verdict = False, "INCONCLUSIVE"
    else:
        ok, verdict = True, "PASS"
    _results.append(ok)
    print(f"{name:.<58} {shown:>24}   (target ≤ {_fmt(at_most, unit)}, 95% CI)   {verdict}", flush=True)
    return ok


def summary() -> None:
    """Print how many targets passed."""
    n_ok = sum(_results)
    print(f"{n_ok} of {len(_results)} targets PASS" + ("" if n_ok == len(_results) else
                                                       f", {len(_results) - n_ok} FAIL"), flush=True)
