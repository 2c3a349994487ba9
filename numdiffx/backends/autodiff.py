"""Autodiff references for the gradient checks, per framework, and host copies.

``reference_for(name)`` returns the class that differentiates ``f`` with that
framework's own autodiff (torch autograd and forward AD; ``jax.vjp``/``jax.jvp``); it
is imported only when arrays of that framework are checked. Every reference works in
the *real view*: a complex array of n elements is the 2n real numbers
``(re_0, im_0, re_1, im_1, ...)``, so a Jacobian row or column is real for complex
inputs and outputs alike, and the real and imaginary parts are both checked.

Common contract of a reference ``R(f, args, checked)`` (``checked``: the argument
indices to differentiate, arrays private to the check):

- ``R.outputs``: f's outputs at ``args`` (a tuple), computed once with autodiff on;
  ``R.differentiable(k)`` whether output k has a derivative at all (torch:
  ``requires_grad``).
- ``R.vjp(cotangents)`` -> ``{i: real-view gradient (host float64, flat) or None}``,
  ``cotangents`` ``{k: real-view host vector}``. ``None``: no path from output to input.
- ``R.jacobian(outputs)`` -> ``{(k, i): (rows_k, n_i) host float64 or None}``.
- ``R.jvp(tangents)`` -> ``{k: real-view host vector}`` (forward mode).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from numdiffx.backends import backend_for

__all__ = ["framework_of", "reference_for", "to_host"]

_REFERENCES = {"torch": "numdiffx.backends._torch_autodiff",
               "jax": "numdiffx.backends._jax_autodiff"}


def framework_of(x: Any) -> str:
    """'numpy', 'torch', 'jax', 'cupy' or 'generic': the backend owning array ``x``."""
    return backend_for(x).name


def reference_for(framework: str) -> Any:
    """The autodiff reference class of ``framework`` ('torch' or 'jax'); imports it."""
    if framework not in _REFERENCES:
        raise ValueError(f"no autodiff reference for {framework} arrays; pass a callable "
                         "reference returning the claimed Jacobian (out.shape + in.shape).")
    return importlib.import_module(_REFERENCES[framework]).Reference


def to_host(x: Any) -> np.ndarray:
    """A host numpy copy of any array: torch tensors detached, conjugation resolved,
    ZeroTensors materialised; cupy arrays copied from the device; other arrays through
    the backend's host copy (DLPack from a non-default device)."""
    root = type(x).__module__.split(".", 1)[0]
    if root == "torch":
        return importlib.import_module(_REFERENCES["torch"]).to_host(x)
    if root == "cupy":  # pragma: no cover - needs a GPU
        return np.asarray(x.get())
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.array(x, copy=True)
    return np.array(backend_for(x).to_host(x), copy=True)
