"""The report the studies reproduce, cited once so every output names it the same way."""

from __future__ import annotations

__all__ = ["REPORT", "REPORT_SHORT"]

#: Full citation, printed by the CLI and written into the JSON records.
REPORT = ("JacrevFinite: Finite Difference approach to replacing PyTorch Autograd, "
          "B. Hendrata, 2024")
#: Short form for figure titles.
REPORT_SHORT = "Hendrata (2024), JacrevFinite"
