"""The differentiated variables of one call, flattened into one vector, and f(x).

:func:`build_problem` validates the arguments in ``argnums``, copies them (detached from
any autodiff graph), builds the evaluator and evaluates f(x) once -- or takes the
caller's ``f0`` -- before any plan runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from array_api_compat import device as _device

from numdiffx.backends import backend_for

from . import holomorphic
from .evaluation import Evaluator, EvaluatorSpec, ExecutorEvaluator, is_16_bit_float
from .stencils import ComplexStep
from .validation import Options, f0_iv, input_iv

__all__ = ["Problem", "build_problem"]


@dataclass
class Problem:
    """What every plan works on: flat x, its pieces' shapes, the evaluator and f(x)."""

    xp: Any
    backend: Any
    x_flat: Any  # (n,) the differentiated arguments, concatenated
    shapes: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]
    evaluator: Evaluator
    f0: Any  # (M,) f(x), flat

    @property
    def n(self) -> int:
        return int(self.x_flat.shape[0])

    @property
    def m_out(self) -> int:
        return int(self.f0.shape[0])

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.evaluator.out_shape

    @property
    def dtype(self) -> Any:
        return self.x_flat.dtype

    @property
    def device(self) -> Any:
        return _device(self.x_flat)

    @property
    def nfev(self) -> int:
        return self.evaluator.nfev

    @property
    def eps(self) -> float:
        """The relative precision f is evaluated in (the input dtype's eps)."""
        return float(self.xp.finfo(self.dtype).eps)

    @property
    def real_x(self) -> Any:
        """The real part of x (x itself when real): what step sizes are scaled by."""
        xp = self.xp
        return xp.real(self.x_flat) if xp.isdtype(self.dtype, "complex floating") else (
            self.x_flat)

    def split(self, flat: Any, trailing: tuple[int, ...] = ()) -> list[Any]:
        """A flat (n, *trailing)... array cut into one piece per differentiated argument,
        each reshaped to ``trailing + shape`` (leading axis order kept)."""
        xp, out, start = self.xp, [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            out.append(xp.reshape(flat[..., start:start + size], (*trailing, *shape)))
            start += size
        return out


def _real_at_real_points(f: Callable[..., Any], xp: Any, backend: Any, first: int
                         ) -> Callable[..., Any]:
    """For the complex step: f whose values have a complex dtype even at real points
    (``np.asarray(x, complex)`` inside f) gives their real part there, where the imaginary
    part is zero; a nonzero one (a complex-valued f) is refused."""

    def real_valued(*args: Any, **kwargs: Any) -> Any:
        y = f(*args, **kwargs)
        x, dt = args[first], getattr(y, "dtype", None)
        if (dt is None or not xp.isdtype(dt, "complex floating")
                or xp.isdtype(x.dtype, "complex floating")):
            return y
        if not (backend.is_traced(y) or backend.is_traced(x)) and bool(xp.any(xp.imag(y) != 0)):
            raise TypeError("method='complex_step' needs a real-valued f; f returned complex "
                            "values at real x. Use method='central'.")
        return xp.real(y)

    return real_valued


def _second_order_dtype_iv(xp: Any, x: Any, name: str) -> None:
    if is_16_bit_float(xp, x.dtype):
        raise TypeError(
            f"{name} has dtype {x.dtype}: a second difference of f's values in a 16-bit float "
            "has round-off ~eps**(1/2) (3% in float16, 9% in bfloat16) and often no correct "
            "digit. Cast x to float32 and the result back; or pass grad= (a Hessian from a "
            "gradient is a first difference, which 16-bit floats support)."
        )


def build_problem(f: Callable[..., Any], args: Sequence[Any], variables: Sequence[int],
                  opts: Options, names: Sequence[str], *, known: Problem | None = None,
                  f0: Any = None, second_order: bool = False) -> Problem:
    """Validate and flatten the variables; f(x) from ``known`` (another argnum of the same
    call), from the caller's ``f0``, or evaluated once here. ``second_order``: the plan
    differences f's values twice (hessian, hvp), which 16-bit floats cannot carry."""
    args = list(args)
    xp = None
    flats, shapes, dtypes = [], [], []
    backend: Any = None
    for i, name in zip(variables, names):
        xpi, xi = input_iv(args[i], name, opts.method)
        if xp is None:
            xp, backend = xpi, backend_for(xi)
        elif xpi is not xp:
            raise TypeError(f"all differentiated arguments must come from one array library; "
                            f"{name} is a {type(xi).__name__}. Convert it first.")
        if second_order or opts.method.deriv >= 2:
            _second_order_dtype_iv(xp, xi, name)
        xi = backend.prepare(xi, xp)
        args[i] = xi
        flats.append(xp.reshape(xi, (-1,)))
        shapes.append(tuple(xi.shape))
        dtypes.append(xi.dtype)
    if len(set(dtypes)) > 1:
        raise TypeError(f"the arguments in argnums have different dtypes {dtypes}; cast them to a "
                        "common dtype first.")
    assert xp is not None
    x_flat = flats[0] if len(flats) == 1 else xp.concat(flats, axis=0)
    for shape, name in zip(shapes, names):
        if opts.batch_axis > len(shape):
            raise ValueError(f"batch_axis={opts.batch_axis} is out of range for {name} of shape "
                             f"{shape}; use 0..{len(shape)}.")
    if known is None:  # before f is ever called
        opts.rule.check_point(x_flat, tuple(names), backend)
    if isinstance(opts.method, ComplexStep) and f0 is None and known is None:
        f = _real_at_real_points(f, xp, backend, variables[0])
    spec = EvaluatorSpec(f, tuple(args), tuple(variables), tuple(shapes), opts.evaluation,
                         opts.batch_axis)
    evaluator = (Evaluator(spec, backend, xp) if opts.executor is None else
                 ExecutorEvaluator(spec, backend, xp, opts.executor, opts.task_size,
                                   opts.retries))
    if known is not None:  # f(x) does not depend on which argument is perturbed: reuse it
        evaluator.out_shape = known.evaluator.out_shape
        evaluator.nfev = known.evaluator.nfev  # nfev counts the whole call
        value = evaluator.known(x_flat, known.f0)
    elif f0 is not None:
        given = f0_iv(f0, xp)
        evaluator.out_shape = tuple(given.shape)
        value = evaluator.known(x_flat, xp.reshape(given, (-1,)))
    else:
        value = evaluator.first(x_flat)
    evaluator.attach(opts)  # checkpoint= and progress= (f(x) fingerprints f)
    real = x_flat.dtype == xp.float64 or x_flat.dtype == xp.float32
    if known is None and not real and xp.isdtype(x_flat.dtype, "complex floating"):
        holomorphic.check_complex_input(xp, backend, evaluator, x_flat, value, names)
    if isinstance(opts.method, ComplexStep):
        if xp.isdtype(value.dtype, "complex floating"):
            raise TypeError("method='complex_step' needs a real-valued f; f returned complex "
                            "values at real x. Use method='central'.")
        if known is None:
            holomorphic.check(xp, backend, evaluator, x_flat, value)
    return Problem(xp, backend, x_flat, tuple(shapes), tuple(names), evaluator, value)
