"""ips_impact: causal evaluation of a randomized IPS trial with administrative data.

Public API re-exports only; see ``shared/DESIGN.md`` for the contract.
"""

from __future__ import annotations

from ips_impact import errors

__version__ = "0.1.0"

__all__ = ["errors", "__version__"]
