"""numdiffx: finite differences done properly, on every major array library."""

from importlib.metadata import PackageNotFoundError, version

from numdiffx import steps as steps
from numdiffx._core.api import derivative as derivative
from numdiffx._core.api import gradient as gradient
from numdiffx._core.api import jacobian as jacobian
from numdiffx._core.api import jvp as jvp
from numdiffx._core.api_second import hessian as hessian
from numdiffx._core.api_second import hvp as hvp
from numdiffx._core.evaluation import EvaluationError as EvaluationError
from numdiffx._core.evaluation import EvaluationWarning as EvaluationWarning
from numdiffx._core.result import DiffResult as DiffResult
from numdiffx._core.result import Status as Status
from numdiffx._core.sparse import SparsityPattern as SparsityPattern
from numdiffx._core.sparse import detect_sparsity as detect_sparsity
from numdiffx._core.stencils import AbstractMethod as AbstractMethod
from numdiffx._core.stencils import ComplexStep as ComplexStep
from numdiffx._core.stencils import Stencil as Stencil
from numdiffx._core.stencils import backward as backward
from numdiffx._core.stencils import central as central
from numdiffx._core.stencils import complex_step as complex_step
from numdiffx._core.stencils import forward as forward
from numdiffx.backends.sparse import SparseJacobian as SparseJacobian
from numdiffx.checks import GradcheckError as GradcheckError
from numdiffx.checks import check_grads as check_grads
from numdiffx.checks import cross_check as cross_check
from numdiffx.checks import explain_perturbation as explain_perturbation
from numdiffx.checks import gradcheck as gradcheck
from numdiffx.checks import gradcheck_module as gradcheck_module
from numdiffx.checks import gradgradcheck as gradgradcheck


def __getattr__(name: str) -> object:
    """``nd.torch`` / ``nd.jax``: the interop modules, imported (with their library) on use;
    ``nd.scipy``: the solver callables (SciPy is imported when one is created)."""
    if name == "scipy":
        from importlib import import_module

        module = import_module("numdiffx.scipy")
        globals()[name] = module
        return module
    if name in ("torch", "jax"):
        from importlib import import_module
        from importlib.util import find_spec

        if find_spec(name) is None:
            raise ImportError(f"nd.{name} needs {name}, which is not installed: pip install "
                              f"'numdiffx[{name}]'.")
        module = import_module(f"numdiffx.interop.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'numdiffx' has no attribute {name!r}")


try:
    __version__ = version("numdiffx")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "AbstractMethod",
    "ComplexStep",
    "DiffResult",
    "EvaluationError",
    "EvaluationWarning",
    "GradcheckError",
    "SparseJacobian",
    "SparsityPattern",
    "Status",
    "Stencil",
    "__version__",
    "backward",
    "central",
    "check_grads",
    "complex_step",
    "cross_check",
    "derivative",
    "detect_sparsity",
    "explain_perturbation",
    "forward",
    "gradcheck",
    "gradcheck_module",
    "gradgradcheck",
    "gradient",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "steps",
]
