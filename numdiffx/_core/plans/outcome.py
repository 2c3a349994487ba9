"""What a step rule hands back to a plan (kept apart so rules need not import plans)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome"]


@dataclass
class Outcome:
    """What a step rule hands back to its plan: per entry and output, (E, M) each.

    ``step`` is per step variable (S,) when ``per_entry_step`` is False (one-step
    rules), else (E, M): the step each element's chosen estimate came from.
    """

    value: Any
    error: Any
    step: Any
    status: Any
    per_entry_step: bool = False
