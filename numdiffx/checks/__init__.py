"""Gradient checks: gradcheck, gradgradcheck, check_grads, cross_check, explanations.

Drop-ins for ``torch.autograd.gradcheck``/``gradgradcheck`` and
``jax.test_util.check_grads`` whose tolerance follows the finite difference's own error.
torch and jax are imported only when their arrays are checked.
"""

from ._compare import default_tolerances as default_tolerances
from ._cross import CrossCheckReport as CrossCheckReport
from ._cross import cross_check as cross_check
from ._explain import explain_perturbation as explain_perturbation
from ._gradcheck import gradcheck as gradcheck
from ._gradgrad import gradgradcheck as gradgradcheck
from ._jax_grads import check_grads as check_grads
from ._module import gradcheck_module as gradcheck_module
from ._numerical import finite_difference_error as finite_difference_error
from ._problem import GradcheckError as GradcheckError

__all__ = ["CrossCheckReport", "GradcheckError", "check_grads", "cross_check",
           "default_tolerances", "explain_perturbation", "finite_difference_error",
           "gradcheck", "gradcheck_module", "gradgradcheck"]
