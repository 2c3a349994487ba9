"""Gradient checks: gradcheck, gradgradcheck, cross_check, and diagnostics that explain.

torch and jax are imported only when their arrays are checked.
"""

from ._cross import CrossCheckReport as CrossCheckReport
from ._cross import cross_check as cross_check
from ._diagnose import GradcheckError as GradcheckError
from ._diagnose import explain_perturbation as explain_perturbation
from ._gradcheck import default_tolerances as default_tolerances
from ._gradcheck import gradcheck as gradcheck
from ._gradcheck import gradgradcheck as gradgradcheck

__all__ = ["CrossCheckReport", "GradcheckError", "cross_check", "default_tolerances",
           "explain_perturbation", "gradcheck", "gradgradcheck"]
