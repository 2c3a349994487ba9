"""Input validation at the boundary: one ``*_iv`` helper per kind of argument.

Every public operation validates and normalises its arguments here, once, before f is
ever called; the numerics then trust them. ``TypeError`` for wrong kinds, ``ValueError``
for bad values, each message naming the parameter and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as _device

from numdiffx.backends import backend_for

from .evaluation import EVALUATION_MODES, check_executor
from .evaluation.progress import progress_iv
from .stencils import AbstractMethod, ComplexStep, resolve_method
from .strategies.base import AbstractStepRule
from .strategies.resolve import resolve_step

__all__ = ["Options", "argnums_iv", "callable_iv", "checkpoint_iv", "input_iv", "options_iv",
           "tangents_iv"]


@dataclass(frozen=True)
class Options:
    """The validated options of one call."""

    method: AbstractMethod
    rule: AbstractStepRule
    evaluation: str
    chunk_size: int | None
    memory_budget: int
    batch_axis: int = 0
    executor: Any = None  # with an executor, task_size is the points per task
    task_size: int | None = None
    retries: int = 0
    operation: str = ""  # what the call computes (names its evaluations in a checkpoint)
    checkpoint: str | None = None  # the evaluation record's absolute path
    progress: object = None  # None (shown past a few seconds), True, False or a callable


def checkpoint_iv(checkpoint: object) -> str | None:
    """``checkpoint=``: None or a file path (str or path-like), made absolute."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)) or isinstance(checkpoint, bytes):
        raise TypeError(f"checkpoint must be None or the path of a file that keeps every "
                        f"evaluation of f (e.g. checkpoint='jacobian.sqlite'); got "
                        f"{type(checkpoint).__name__}.")
    path = os.fspath(checkpoint)
    if not isinstance(path, str) or not path:
        raise ValueError(f"checkpoint must name a file, e.g. checkpoint='jacobian.sqlite'; "
                         f"got {checkpoint!r}.")
    return os.path.abspath(path)


def options_iv(method: object, step: object, evaluation: object, chunk_size: object,
               memory_budget: object, batch_axis: object = 0, executor: object = None,
               retries: object = 0, *, operation: str, checkpoint: object = None,
               progress: object = None) -> Options:
    """Validate the shared options and check the step rule supports ``operation``."""
    m = resolve_method(method)
    rule = resolve_step(step, name="step")
    rule.check_supports(operation, m)
    if not isinstance(evaluation, str) or evaluation not in EVALUATION_MODES:
        raise ValueError(f"evaluation={evaluation!r} is not known; use one of {EVALUATION_MODES} "
                         "('batched' if f accepts a leading batch axis).")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or a positive int (points per call of f); "
                         f"got {chunk_size!r}.")
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise ValueError(f"memory_budget must be a positive int number of bytes; got "
                         f"{memory_budget!r}. Example: memory_budget=2**28.")
    if isinstance(batch_axis, bool) or not isinstance(batch_axis, int) or batch_axis < 0:
        raise ValueError(f"batch_axis must be a non-negative int (the axis of f's arguments "
                         f"holding the perturbed copies); got {batch_axis!r}.")
    if batch_axis != 0 and evaluation != "batched":
        raise ValueError(f"batch_axis={batch_axis} only applies to evaluation='batched'; got "
                         f"evaluation={evaluation!r}. Pass evaluation='batched'.")
    check_executor(executor, retries)
    path, progress = checkpoint_iv(checkpoint), progress_iv(progress)
    if executor is not None:  # chunk_size sizes the tasks; the chunks follow memory_budget
        return Options(m, rule, evaluation, None, memory_budget, batch_axis, executor,
                       chunk_size, retries, operation, path, progress)  # type: ignore[arg-type]
    return Options(m, rule, evaluation, chunk_size, memory_budget, batch_axis,
                   operation=operation, checkpoint=path, progress=progress)


def callable_iv(f: object, name: str = "f") -> None:
    if not callable(f):
        raise TypeError(f"{name} must be callable; got {type(f).__name__}. Pass the function "
                        "itself, e.g. nd.jacobian(f, x), not f(x).")


def argnums_iv(argnums: object, nargs: int) -> tuple[tuple[int, ...], bool]:
    """(argnums tuple, whether a tuple was given)."""
    if nargs == 0:
        raise TypeError("at least one positional argument to differentiate is required, e.g. "
                        "nd.jacobian(f, x).")
    given_tuple = isinstance(argnums, (tuple, list))
    nums = tuple(argnums) if given_tuple else (argnums,)  # type: ignore[arg-type]
    if not nums:
        raise ValueError("argnums must not be empty; use argnums=0 or argnums=(0, 1).")
    out = []
    for a in nums:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"argnums must be an int or a tuple of ints; got {argnums!r}.")
        if not -nargs <= a < nargs:
            raise ValueError(f"argnums={argnums!r} is out of range for {nargs} positional "
                             f"argument(s); use values in 0..{nargs - 1}.")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"argnums must not repeat an argument; got {argnums!r}.")
    return tuple(out), given_tuple


def input_iv(x: Any, name: str, method: AbstractMethod) -> tuple[Any, Any]:
    """(xp, floating array) for one differentiated argument; refuses what cannot work."""
    if isinstance(x, (bool, int, float, complex, list, tuple)) or isinstance(x, np.generic):
        try:
            x = np.asarray(x)
        except ValueError as exc:
            raise ValueError(f"{name} must be a rectangular list of numbers; numpy could not "
                             f"convert it ({exc}).") from None
        if x.dtype == object:
            raise TypeError(f"{name} must hold numbers; a list of {type(x.flat[0]).__name__} "
                            "is not an array. Pass a numeric array.")
    try:
        xp = _namespace(x)
    except TypeError:
        raise TypeError(f"{name} must be an array (numpy, torch, jax, cupy, ...), a Python number "
                        f"or a list of numbers; got {type(x).__name__}.") from None
    if type(x) is not np.ndarray and str(_device(x)) == "meta":
        raise ValueError(f"{name} is on the 'meta' device, which holds no values to "
                         "difference; move it to a real device first (x.to('cpu')).")
    dtype = x.dtype
    if dtype == xp.float64 or dtype == xp.float32:  # the usual case, in two comparisons
        return xp, x
    if xp.isdtype(dtype, "bool") or xp.isdtype(dtype, "integral"):
        default = xp.__array_namespace_info__().default_dtypes(device=_device(x))["real floating"]
        x = xp.astype(x, default)
    elif xp.isdtype(dtype, "real floating"):
        pass  # float16/bfloat16: f runs in them; steps and estimates use their eps
    elif xp.isdtype(dtype, "complex floating"):
        if isinstance(method, ComplexStep):
            raise TypeError(f"{name} is complex: the complex-step method needs real inputs. Use "
                            "method='central' (it differentiates along the real axis).")
    else:  # pragma: no cover - unknown dtype kinds
        raise TypeError(f"{name} has unsupported dtype {dtype}; use a float32/float64 array.")
    return xp, x


#: the array namespace and backend adapter of each array type (array_namespace inspects
#: the array each time; for a type it always answers the same)
_KINDS: dict[type, tuple[Any, Any]] = {}


def array_kind(x: Any) -> tuple[Any, Any]:
    """(namespace, backend adapter) of array ``x``; TypeError if it is not an array."""
    kind = _KINDS.get(type(x))
    if kind is None:
        kind = _KINDS[type(x)] = (array_namespace(x), backend_for(x))
    return kind


def _namespace(x: Any) -> Any:
    return array_kind(x)[0]


def tangents_iv(primals: Any, tangents: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Primals and tangents as matching tuples (``jax.jvp``'s convention)."""
    single = not isinstance(primals, (tuple, list))
    p = (primals,) if single else tuple(primals)
    t = (tangents,) if not isinstance(tangents, (tuple, list)) else tuple(tangents)
    if len(p) != len(t):
        raise ValueError(f"primals and tangents must have the same length; got {len(p)} primals "
                         f"and {len(t)} tangents.")
    return p, t


def flat_tangent_iv(xp: Any, dtype: Any, shapes: tuple[tuple[int, ...], ...],
                    tangents: tuple[Any, ...], name: str = "tangents") -> Any:
    """The tangents as one flat vector in x's namespace and dtype."""
    pieces = []
    for i, (tan, shape) in enumerate(zip(tangents, shapes)):
        if isinstance(tan, (int, float, list, tuple)) or isinstance(tan, np.generic):
            tan = np.asarray(tan)
        try:
            tan_xp = array_namespace(tan)
        except TypeError:
            raise TypeError(f"{name}[{i}] must be an array; got {type(tan).__name__}.") from None
        if tan_xp is not xp:
            raise TypeError(f"{name}[{i}] must come from the same array library as primals[{i}]; "
                            f"got {type(tan).__name__}.")
        if tuple(tan.shape) != shape:
            raise ValueError(f"{name}[{i}] has shape {tuple(tan.shape)} but primals[{i}] has "
                             f"shape {shape}; they must match.")
        pieces.append(xp.reshape(xp.astype(tan, dtype), (-1,)))
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=0)


def f0_iv(f0: Any, xp: Any, name: str = "f0") -> Any:
    """The caller's f(x) as an array of x's namespace (checked, not copied)."""
    if isinstance(f0, (int, float, list, tuple)) or isinstance(f0, np.generic):
        f0 = np.asarray(f0)
    try:
        f0_xp = array_namespace(f0)
    except TypeError:
        raise TypeError(f"{name} must be an array (f's value at x); got {type(f0).__name__}."
                        ) from None
    if f0_xp is not xp:
        raise TypeError(f"{name} must come from the same array library as x; got "
                        f"{type(f0).__name__}. Pass f(x) exactly as f returns it.")
    if not (xp.isdtype(f0.dtype, "real floating") or xp.isdtype(f0.dtype, "complex floating")):
        raise TypeError(f"{name} must have a floating dtype (f's value at x); got {f0.dtype}.")
    return f0


def sparse_output_iv(sparse_output: object) -> None:
    if not isinstance(sparse_output, bool):
        raise TypeError(f"sparse_output must be True or False; got {sparse_output!r}.")


def check_same_library(args: tuple[Any, ...], nums: tuple[int, ...],
                       method: AbstractMethod) -> None:
    """All differentiated arguments from one array library (checked before f is called)."""
    kinds = {a: array_namespace(input_iv(args[a], f"args[{a}]", method)[1]) for a in nums}
    if len(set(map(id, kinds.values()))) > 1:
        raise TypeError("all differentiated arguments must come from one array library; "
                        f"got {[type(args[a]).__name__ for a in nums]}. Convert them first.")


Validator = Callable[..., Any]
