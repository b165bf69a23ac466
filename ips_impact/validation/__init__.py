"""Validation of every estimator: coverage, size and parity, as a report regenerated from code.

``python -m ips_impact.validation --replications 1000 --out docs/validation.md`` runs the
Monte Carlo studies of :mod:`.studies` on the synthetic trial (known truth), collects the
R parity checks of the test suite (:mod:`.parity`) and writes the report page with its
figure. From Python:

>>> from ips_impact.validation import run_validation
>>> report = run_validation(replications=200, backend="processes")   # doctest: +SKIP
>>> report.table[["check", "rate", "band_low", "band_high", "inside"]]  # doctest: +SKIP
"""

from __future__ import annotations

from ips_impact.validation.report import ValidationReport
from ips_impact.validation.runner import TABLE_COLUMNS, replicate_seed, run_validation, summarise
from ips_impact.validation.studies import STUDIES, Check, compute_truths

__all__ = [
    "run_validation", "ValidationReport", "STUDIES", "Check", "compute_truths", "summarise",
    "replicate_seed", "TABLE_COLUMNS",
]
