"""Population-scale linkage (issue 15): the same Study and estimates, to the last bit.

The fingerprints were computed with the linkage code before the population-scale
rewrite (see ``tests/scale_fingerprint.py``) and are compared here bit for bit.
"""

from __future__ import annotations

import json
import warnings

import pytest

from scale_fingerprint import REFERENCE, cases, fingerprint

EXPECTED = json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def builders() -> dict:
    return cases()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_study_and_estimates_unchanged(name: str, builders: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fingerprint(builders[name]())
    assert got == EXPECTED[name]
