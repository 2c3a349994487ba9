"""Sparse Jacobians: colouring, patterns, detection, and the dense-size guard."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.sparse import colour_columns
from tests.tolerances import batch_checks, rtol_for


def _shift(xp, x, k):
    """x shifted by k along the last axis with zero fill (works batched and unbatched)."""
    n = x.shape[-1]
    zeros = xp.zeros((*x.shape[:-1], abs(k)), dtype=x.dtype, device=_dev(x))
    if k > 0:
        return xp.concat([x[..., k:], zeros], axis=-1)
    return xp.concat([zeros, x[..., : n + k]], axis=-1)


def _dev(x):
    from array_api_compat import device

    return device(x)


def banded(xp, x):  # tridiagonal: x_i^2 - x_{i-1} x_{i+1} + sin x_i
    return x**2 - _shift(xp, x, -1) * _shift(xp, x, 1) + xp.sin(x)


def block_diagonal(xp, x):  # blocks of 3
    n = x.shape[-1]
    b = xp.reshape(x, (*x.shape[:-1], n // 3, 3))
    s = xp.sum(b * b, axis=-1, keepdims=True)
    return xp.reshape(b * s, x.shape)


def arrow(xp, x):  # every output depends on x_0; output 0 depends on everything
    head = xp.sum(xp.exp(x), axis=-1, keepdims=True)
    rest = x[..., 1:] * x[..., :1]
    return xp.concat([head, rest], axis=-1)


def random_sparse(xp, x):  # a fixed random pattern through a masked linear map + square
    a = xp.asarray(_RANDOM_MASK * 0.5, dtype=x.dtype, device=_dev(x))
    return (x @ a.T) ** 2


_N = 12
_RANDOM_MASK = (np.random.default_rng(3).random((_N, _N)) < 0.2) | np.eye(_N, dtype=bool)


def _exact_patterns(n):
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1
    band[0, 1] = band[n - 1, n - 2] = False  # zero fill: f_0 has no x_{-1} x_1 term
    block = np.kron(np.eye(n // 3, dtype=bool), np.ones((3, 3), dtype=bool))
    arr = np.eye(n, dtype=bool)
    arr[0, :] = True
    arr[:, 0] = True
    return {"banded": band, "block_diagonal": block, "arrow": arr, "random": _RANDOM_MASK}


FUNCTIONS = {"banded": banded, "block_diagonal": block_diagonal, "arrow": arrow,
             "random": random_sparse}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("density", [0.02, 0.1, 0.3])
def test_colouring_is_valid_on_random_patterns(seed, density):
    rng = np.random.default_rng(seed)
    mask = rng.random((40, 60)) < density
    pattern = nd.SparsityPattern.from_any(mask, (40, 60))
    colours = pattern.colours
    for r in range(40):
        cols = np.nonzero(mask[r])[0]
        assert len(set(colours[cols].tolist())) == cols.size, "two columns of a colour share a row"
    max_row = int(mask.sum(axis=1).max()) if mask.any() else 0
    assert pattern.n_colours >= max_row  # a lower bound every valid colouring meets
    assert pattern.n_colours <= 60


def test_cyclic_colouring_is_taken_only_where_valid_and_then_optimal():
    """j mod L (L: the most nonzeros in a row, a lower bound) where no row holds two
    columns of one colour; elsewhere (an arrow, whose full row forces n colours, and a
    shuffled band) the greedy colouring, still valid."""
    from numdiffx._core.sparse import _cyclic_colouring

    def cyclic(mask):
        rows, cols = np.nonzero(mask)
        return _cyclic_colouring(rows, cols, np.searchsorted(rows, np.arange(mask.shape[0] + 1)),
                                 mask.shape[1])

    n = 30
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1
    np.testing.assert_array_equal(cyclic(band), np.arange(n) % 3)
    blocks = np.kron(np.eye(6, dtype=bool), np.ones((5, 5), dtype=bool))
    np.testing.assert_array_equal(cyclic(blocks), np.arange(30) % 5)
    shuffled = band[:, np.random.default_rng(0).permutation(n)]
    assert cyclic(shuffled) is None  # neighbours no longer consecutive: greedy instead
    pattern = nd.SparsityPattern.from_any(shuffled, (n, n))
    rows, cols = np.nonzero(shuffled)
    keys = rows * pattern.n_colours + pattern.colours[cols]
    assert np.unique(keys).size == rows.size  # valid


def test_colouring_of_a_band_uses_its_width():
    n = 50
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 2
    rows, cols = np.nonzero(band)
    assert colour_columns(rows, cols, (n, n)).max() + 1 == 5


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_sparse_equals_dense(xb, name, method):
    f = FUNCTIONS[name]
    x = xb.asarray(np.linspace(0.2, 1.4, _N))
    mask = _exact_patterns(_N)[name]
    dense = xb.to_numpy(nd.jacobian(lambda v: f(xb.xp, v), x, method=method,
                                    evaluation="batched"))
    res = nd.jacobian(lambda v: f(xb.xp, v), x, method=method, evaluation="batched",
                      sparsity=mask, sparse_output=False, full_output=True)
    sparse = xb.to_numpy(res.value)
    np.testing.assert_allclose(sparse, dense * mask, rtol=rtol_for(nd.forward(), "float64"),
                               atol=1e-12)
    points_per_colour = {"central": 2, "forward": 1, "backward": 1}[method]  # f(x) reused
    n_colours = nd.SparsityPattern.from_any(mask, (_N, _N)).n_colours
    # f(x), the points, and the checks of the (single) batched call
    assert res.nfev == 1 + points_per_colour * n_colours + batch_checks(1)


def test_sparse_output_types_on_numpy():
    pytest.importorskip("scipy")
    import scipy.sparse

    x = np.linspace(0.2, 1.4, _N)
    j = nd.jacobian(lambda v: banded(np, v), x, sparsity=_exact_patterns(_N)["banded"])
    assert isinstance(j, scipy.sparse.csr_array)
    assert j.shape == (_N, _N) and j.nnz == 3 * _N - 4  # the band without the two corners
    dense = nd.jacobian(lambda v: banded(np, v), x)
    np.testing.assert_allclose(j.toarray(), dense, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("form", ["mask", "scipy", "pairs", "pattern"])
def test_every_pattern_form_is_accepted(form):
    mask = _exact_patterns(_N)["banded"]
    rows, cols = np.nonzero(mask)
    if form == "scipy":
        scipy_sparse = pytest.importorskip("scipy.sparse")
        pattern = scipy_sparse.coo_array(mask.astype(float))
    else:
        pattern = {"mask": mask, "pairs": (rows, cols),
                   "pattern": nd.SparsityPattern(rows, cols, (_N, _N))}[form]
    x = np.linspace(0.2, 1.4, _N)
    j = nd.jacobian(lambda v: banded(np, v), x, sparsity=pattern, sparse_output=False)
    np.testing.assert_allclose(j, nd.jacobian(lambda v: banded(np, v), x), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_detection_finds_the_exact_pattern(xb, name):
    f = FUNCTIONS[name]
    x = xb.asarray(np.linspace(0.2, 1.4, _N))
    exact = _exact_patterns(_N)[name]
    finite_only = nd.detect_sparsity(lambda v: f(xb.xp, v), x, evaluation="batched",
                                     nan_probe=False)
    np.testing.assert_array_equal(finite_only.to_dense(), exact)
    both = nd.detect_sparsity(lambda v: f(xb.xp, v), x, evaluation="batched").to_dense()
    assert (both >= exact).all()  # never misses what the finite probe finds
    if name not in ("random", "banded"):  # no products with zeros: the NaN probe is exact
        np.testing.assert_array_equal(both, exact)


def test_nan_probe_over_reports_through_products_with_zeros_documented():
    x = np.linspace(0.2, 1.4, _N)
    both = nd.detect_sparsity(lambda v: random_sparse(np, v), x, evaluation="batched")
    assert both.nnz == _N * _N  # NaN * 0 is NaN: the dense matmul marks every entry
    j = nd.jacobian(lambda v: random_sparse(np, v), x, sparsity=both, sparse_output=False)
    np.testing.assert_allclose(j, nd.jacobian(lambda v: random_sparse(np, v), x), atol=1e-9)


def test_detection_documented_miss_masked_flat_branch():
    # where(x > 0, x**2, 0) at x < 0: the output does not move under a finite step and
    # the NaN is masked by the comparison -- the documented failure case.
    def f(x):
        return np.where(x > 0, x**2, 0.0) + x[..., ::-1] * 0.0

    x = np.array([-1.0, 2.0, 3.0])
    pattern = nd.detect_sparsity(f, x, evaluation="batched")
    detected = pattern.to_dense()
    assert not detected[0, 0], "the masked entry is missed, as documented"
    assert detected[1, 1] and detected[2, 2]


def test_detect_once_and_reuse_the_pattern():
    x = np.linspace(0.2, 1.4, _N)
    pattern = nd.detect_sparsity(lambda v: banded(np, v), x, evaluation="batched")
    first = pattern.colours
    assert pattern.colours is first  # coloured once, cached
    for shift in (0.0, 0.3):
        j = nd.jacobian(lambda v: banded(np, v), x + shift, sparsity=pattern,
                        sparse_output=False, full_output=True)
        assert j.nfev == 1 + 2 * 3
        np.testing.assert_allclose(j.value, nd.jacobian(lambda v: banded(np, v), x + shift),
                                   rtol=1e-12, atol=1e-14)
    j = nd.jacobian(lambda v: banded(np, v), x, sparsity="detect", sparse_output=False)
    np.testing.assert_allclose(j, nd.jacobian(lambda v: banded(np, v), x), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("evaluation", ["batched", "loop"])
def test_detection_takes_the_callers_f0(evaluation):
    """f0= saves detection its f(x): the same pattern with one call of f fewer."""
    x = np.linspace(0.2, 1.4, _N)
    calls = []

    def f(v):
        calls.append(1)
        return banded(np, v)

    plain = nd.detect_sparsity(f, x, evaluation=evaluation)
    n_plain = len(calls)
    calls.clear()
    given = nd.detect_sparsity(f, x, evaluation=evaluation, f0=banded(np, x))
    assert len(calls) == n_plain - 1
    np.testing.assert_array_equal(given.rows, plain.rows)
    np.testing.assert_array_equal(given.cols, plain.cols)


def test_per_sample_block_structure_of_the_report_network():
    from numdiffx.studies import make_mlp

    net = make_mlp("tanh")
    x = np.random.default_rng(0).standard_normal((100, 5))
    pattern = nd.SparsityPattern.per_sample((100, 5), (100, 5))
    assert pattern.n_colours == 5
    res = nd.jacobian(net, x, evaluation="batched", sparsity=pattern, sparse_output=False,
                      full_output=True)
    assert res.nfev == 1 + 2 * 5 + batch_checks(1)  # instead of 1 + 2 * 500
    np.testing.assert_allclose(res.value, net.jacobian(x), atol=1e-9)
    detected = nd.detect_sparsity(net, x, evaluation="batched")
    np.testing.assert_array_equal(detected.to_dense(), pattern.to_dense())


def test_large_banded_runs_within_the_default_budget():
    pytest.importorskip("scipy")  # numpy's sparse result is scipy's csr_array
    n = 100_000
    x = np.linspace(0.1, 1.0, n)
    pattern = nd.SparsityPattern(np.concatenate([np.arange(n), np.arange(1, n), np.arange(n - 1)]),
                                 np.concatenate([np.arange(n), np.arange(n - 1), np.arange(1, n)]),
                                 (n, n))
    j = nd.jacobian(lambda v: banded(np, v), x, sparsity=pattern, evaluation="batched")
    assert j.shape == (n, n) and j.nnz == 3 * n - 2  # the given pattern, stored as given
    np.testing.assert_allclose(j.diagonal(), 2 * x + np.cos(x), rtol=1e-8)


def test_a_dense_result_that_cannot_fit_is_refused_with_its_size():
    x = np.zeros(2_000_000)
    with pytest.raises(ValueError, match=r"dense Jacobian would be 2000000 x 2000000 .* GiB"):
        nd.jacobian(lambda v: v * 2.0, x, evaluation="batched")


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"sparsity": np.ones((3, 4), dtype=bool)}, ValueError, r"mask has shape \(3, 4\)"),
        ({"sparsity": np.ones((3, 3))}, TypeError, "boolean mask such as J != 0"),
        ({"sparsity": "guess"}, ValueError, "sparsity='guess' is not known"),
        ({"sparsity": (np.array([0]), np.array([7]))}, ValueError, "must lie in the Jacobian"),
        ({"sparsity": np.eye(3, dtype=bool), "sparse_output": "yes"}, TypeError,
         "sparse_output must be True or False"),
    ],
)
def test_sparse_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nd.jacobian(lambda v: v**2, np.ones(3), **kwargs)


def test_sparse_with_several_argnums_is_refused():
    with pytest.raises(TypeError, match="sparsity= works with one argnums int"):
        nd.jacobian(lambda a, b: a * b, np.ones(3), np.ones(3), argnums=(0, 1),
                    sparsity=np.eye(3, dtype=bool))


@pytest.mark.parametrize("rule", [nd.steps.adaptive(), nd.steps.bound()], ids=["adaptive", "bound"])
def test_sparse_with_driven_steps_equals_dense(rule):
    x = np.linspace(0.2, 1.4, _N)
    mask = _exact_patterns(_N)["banded"]
    dense = nd.jacobian(lambda v: banded(np, v), x, step=rule, evaluation="batched",
                        full_output=True)
    sparse = nd.jacobian(lambda v: banded(np, v), x, step=rule, evaluation="batched",
                         sparsity=mask, sparse_output=False, full_output=True)
    np.testing.assert_allclose(sparse.value, dense.value, rtol=1e-12, atol=1e-13)
    assert sparse.nfev < dense.nfev / 2  # colours, not columns, per level
    rows, cols = np.nonzero(mask)
    assert sparse.error.shape == (rows.size,) and np.all(np.isfinite(sparse.error))
    compact = nd.jacobian(lambda v: banded(np, v), x, step=rule, evaluation="batched",
                          sparsity=mask)
    np.testing.assert_allclose(compact.toarray(), dense.value, rtol=1e-12, atol=1e-13)


def _banded_exact(x):
    n = x.size
    j = np.diag(2 * x + np.cos(x))
    j[np.arange(1, n), np.arange(n - 1)] = -np.append(x[2:], 0.0)  # d f_i / d x_(i-1)
    j[np.arange(n - 1), np.arange(1, n)] = -np.append(0.0, x[:-2])  # d f_i / d x_(i+1)
    return j


def test_sparse_adaptive_per_nonzero_on_every_backend(xb):
    # the tableau runs over the stored nonzeros: value, honest error, step and status
    # per nonzero in the pattern's order, on every backend
    x64 = np.linspace(0.2, 1.4, _N)
    mask = _exact_patterns(_N)["banded"]
    r = nd.jacobian(lambda v: banded(xb.xp, v), xb.asarray(x64), evaluation="batched",
                    step=nd.steps.adaptive(), sparsity=mask, sparse_output=False,
                    full_output=True)
    exact = _banded_exact(x64)
    value = xb.to_numpy(r.value)
    np.testing.assert_allclose(value, exact, rtol=1e-12, atol=1e-13)
    rows, cols = np.nonzero(mask)
    pattern = nd.SparsityPattern.from_any(mask, mask.shape)
    true = np.abs(value - exact)[pattern.rows, pattern.cols]
    error, step = xb.to_numpy(r.error), xb.to_numpy(r.step)
    assert error.shape == step.shape == (rows.size,)
    assert np.all(error >= true) and np.all(error <= 1e-9)
    assert np.all(xb.to_numpy(r.status) == 0)
    assert np.all((step > 0) & (step <= 0.1 * np.maximum(np.abs(x64), 1.0)[pattern.cols]))
    # 3 colours x 2 points per level (and one check pass at the auto step), not 2 x 12 columns
    assert r.nfev < 40 + 3 * 2


def test_sparse_bound_per_nonzero_on_every_backend(xb):
    x64 = np.linspace(0.2, 1.4, _N)
    mask = _exact_patterns(_N)["banded"]
    r = nd.jacobian(lambda v: banded(xb.xp, v), xb.asarray(x64), evaluation="batched",
                    step=nd.steps.bound(), sparsity=mask, sparse_output=False, full_output=True)
    exact = _banded_exact(x64)
    value = xb.to_numpy(r.value)
    np.testing.assert_allclose(value, exact, rtol=1e-9, atol=1e-10)
    pattern = nd.SparsityPattern.from_any(mask, mask.shape)
    true = np.abs(value - exact)[pattern.rows, pattern.cols]
    error, step = xb.to_numpy(r.error), xb.to_numpy(r.step)
    assert error.shape == step.shape == (pattern.rows.size,)
    assert np.all(error >= true)
    assert np.all(step > 0)
    # f(x), then 3 colours x (M stencil + central), and the checks of two batched calls
    assert r.nfev <= 1 + 3 * (4 + 2) + batch_checks(2)


@pytest.mark.parametrize("rule", [nd.steps.adaptive(), nd.steps.bound()], ids=["adaptive", "bound"])
def test_driven_sparse_jacobian_memory_follows_the_nonzeros(rule):
    # n = 1e5: (columns x outputs) state would be 1e10 entries; per-nonzero state is 3e5
    n = 100_000
    x = np.random.default_rng(1).uniform(-1, 1, n)

    def f(v):
        y = -2.0 * v + np.sin(v)
        y[..., 1:] += v[..., :-1]
        y[..., :-1] += v[..., 1:]
        return y

    idx = np.arange(n)
    rows = np.concatenate([idx, idx[1:], idx[:-1]])
    cols = np.concatenate([idx, idx[:-1], idx[1:]])
    r = nd.jacobian(f, x, step=rule, evaluation="batched", sparsity=(rows, cols),
                    full_output=True)
    pytest.importorskip("scipy")
    j = r.value.tocsr()
    np.testing.assert_allclose(j.diagonal(), -2.0 + np.cos(x), rtol=1e-9)
    np.testing.assert_allclose(j.diagonal(1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(j.diagonal(-1), 1.0, rtol=1e-9)
    assert r.error.shape == (3 * n - 2,) and r.success.all()


def test_sparse_adaptive_with_bounds_mixes_one_sided_columns_in_a_colour():
    # x_0 and x_3 sit next to the lower bound 0 of log: their columns go one-sided while
    # the other columns of the same colours stay central, and no point leaves the domain
    x = np.array([1e-4, 0.5, 0.7, 2e-4, 1.1, 1.3, 0.9, 0.6, 2.0])

    def f(v):
        if np.any(v <= 0):
            raise AssertionError("stepped outside the domain")
        return np.log(v) + 0.5 * _shift(np, v, 1) ** 2

    exact = np.diag(1 / x) + np.diag(x[1:], 1)
    mask = exact != 0
    rule = nd.steps.adaptive(bounds=(0.0, np.inf))
    sparse = nd.jacobian(f, x, step=rule, evaluation="batched", sparsity=mask,
                         sparse_output=False, full_output=True)
    dense = nd.jacobian(f, x, step=rule, evaluation="batched", full_output=True)
    # absolute: d f_2 / d x_3 = 2e-4 comes from the short one-sided steps of x_3, where
    # the round-off of f_2 = log(0.7) + ... (about 1e-12 here) dominates
    np.testing.assert_allclose(sparse.value, exact, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sparse.value, dense.value, rtol=1e-10, atol=1e-10)
    assert sparse.success.all() and sparse.nfev < dense.nfev
    pattern = nd.SparsityPattern.from_any(mask, mask.shape)
    assert np.all(sparse.error >= np.abs(sparse.value - exact)[pattern.rows, pattern.cols])
    one_sided = np.isin(pattern.cols, [0, 3])
    assert np.all(sparse.step[one_sided] <= 0.1 * x[pattern.cols[one_sided]])


def _densify(result):
    """The dense matrix of any backend's sparse result (one entry per sparse type)."""
    for attr in ("toarray", "to_dense", "todense"):
        if hasattr(result, attr):
            return getattr(result, attr)()
    raise AssertionError(f"not a sparse result: {type(result)}")


# The sparse type each backend returns (module of the type's class).
SPARSE_TYPES = {"numpy": "scipy.sparse", "torch": "torch", "jax": "jax.experimental.sparse",
                "array_api_strict": "numdiffx.backends.sparse", "cupy": "cupyx.scipy.sparse"}


def test_sparse_output_is_the_backends_own_sparse_type(xb):
    x = xb.asarray(np.linspace(0.2, 1.4, _N))
    mask = _exact_patterns(_N)["banded"]
    result = nd.jacobian(lambda v: banded(xb.xp, v), x, evaluation="batched", sparsity=mask)
    expected_module = SPARSE_TYPES[xb.name.split("_cuda")[0].split("_gpu")[0]]
    if xb.name == "numpy" and importlib.util.find_spec("scipy") is None:
        expected_module = "numdiffx.backends.sparse"  # a core install: the neutral container
    assert type(result).__module__.startswith(expected_module), type(result)
    dense = nd.jacobian(lambda v: banded(xb.xp, v), x, evaluation="batched")
    np.testing.assert_allclose(xb.to_numpy(_densify(result)), xb.to_numpy(dense), rtol=1e-12,
                               atol=1e-14)


def _position_rounding(xp, f):
    """A batched f whose rows round differently with their position and the batch size,
    as a blocked BLAS kernel may (seen on AMD EPYC): x is the same, the last bits move."""
    def g(v):
        y = f(xp, v)
        if y.ndim < 2:
            return y
        m = y.shape[0]
        eps = float(np.finfo(np.float64).eps)
        wobble = 1.0 + eps * xp.asarray((np.arange(m) * 7 + m) % 5, dtype=y.dtype,
                                        device=_dev(y))
        return y * xp.expand_dims(wobble, 1)
    return g


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_detection_is_exact_when_rows_round_by_position(xb, name):
    # The detection compares each probe with x at the same position of a call of the same
    # shape, so a kernel that rounds by batch position cannot invent dependencies.
    x = xb.asarray(np.linspace(0.2, 1.4, _N))
    exact = _exact_patterns(_N)[name]
    g = _position_rounding(xb.xp, FUNCTIONS[name])
    for chunk in (None, 5):  # one chunk, or chunks of two sizes (5, 5, 2)
        found = nd.detect_sparsity(g, x, evaluation="batched", nan_probe=False,
                                   chunk_size=chunk)
        np.testing.assert_array_equal(found.to_dense(), exact)


def test_detection_of_a_matmul_is_exact_with_a_position_dependent_kernel():
    # The reproducer: f = (x @ a.T) ** 2 over-reported 58 nonzeros (12 colours) instead of
    # 34 (6) where a batch of one rounds differently from a batch of n.
    rng = np.random.default_rng(0)
    a = np.kron(np.eye(4), rng.standard_normal((3, 3)))  # block diagonal, 12 x 12
    x = rng.standard_normal(12)

    def f(v):
        y = (v @ a.T) ** 2
        if v.ndim == 2 and v.shape[0] > 1:  # a "different kernel" for batches: last-bit noise
            y = y * (1.0 + np.finfo(float).eps * ((np.arange(v.shape[0]) % 3)[:, None]))
        return y

    pattern = nd.detect_sparsity(f, x, evaluation="batched", nan_probe=False)
    assert pattern.nnz == 36 and pattern.n_colours == 3
    np.testing.assert_array_equal(pattern.to_dense(), a != 0)


def test_sparse_jacobian_container_on_every_backend(xb):
    # The neutral container works with numpy alone: dense, products, conversions.
    xp = xb.xp
    rows, cols = np.array([0, 0, 1, 2]), np.array([0, 2, 1, 2])
    data = xb.asarray([1.0, 2.0, 3.0, 4.0])
    dev_rows, dev_cols = (xp.asarray(r, device=xb.device) for r in (rows, cols))
    jac = nd.SparseJacobian(dev_rows, dev_cols, data, (3, 3))
    dense = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [0.0, 0.0, 4.0]])
    assert repr(jac) == "SparseJacobian(shape=(3, 3), nnz=4, dtype=" + str(data.dtype) + ")"
    assert jac.nnz == 4 and jac.shape == (3, 3)
    np.testing.assert_array_equal(xb.to_numpy(jac.toarray()), dense)
    np.testing.assert_array_equal(xb.to_numpy(jac.todense()), dense)
    np.testing.assert_array_equal(np.asarray(jac), dense)
    v = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(xb.to_numpy(jac @ xb.asarray(v)), dense @ v)
    vv = np.stack([v, 2 * v], axis=1)
    np.testing.assert_allclose(xb.to_numpy(jac @ xb.asarray(vv)), dense @ vv)
    def left(u):  # array-api-strict arrays refuse a foreign right operand: call it directly
        return jac.__rmatmul__(u) if xb.name == "array_api_strict" else u @ jac

    np.testing.assert_allclose(xb.to_numpy(left(xb.asarray(v))), v @ dense)
    np.testing.assert_allclose(xb.to_numpy(left(xb.asarray(vv.T))), vv.T @ dense)
    with pytest.raises(ValueError, match=r"J @ v: the operand has 2 rows but J has shape"):
        jac @ xb.asarray([1.0, 2.0])


def test_sparse_jacobian_conversions():
    jac = nd.SparseJacobian(np.array([0, 1]), np.array([1, 1]), np.array([2.0, 3.0]), (2, 3))
    dense = np.array([[0.0, 2.0, 0.0], [0.0, 3.0, 0.0]])
    scipy_sparse = pytest.importorskip("scipy.sparse")
    s = jac.to_scipy()
    assert isinstance(s, scipy_sparse.csr_array)
    np.testing.assert_array_equal(s.toarray(), dense)
    torch = pytest.importorskip("torch")
    t = jac.to_torch()
    assert t.layout == torch.sparse_coo
    np.testing.assert_array_equal(t.to_dense().numpy(), dense)
    pytest.importorskip("jax")
    j = jac.to_jax()
    np.testing.assert_array_equal(np.asarray(j.todense()), dense)


def test_numpy_sparse_result_without_scipy_is_the_neutral_container(monkeypatch):
    # A core install (numpy alone) still gets a usable sparse result.
    import sys

    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    x = np.linspace(0.2, 1.4, _N)
    mask = _exact_patterns(_N)["banded"]
    jac = nd.jacobian(lambda v: banded(np, v), x, sparsity=mask)
    assert isinstance(jac, nd.SparseJacobian)
    dense = nd.jacobian(lambda v: banded(np, v), x)
    np.testing.assert_allclose(jac.toarray(), dense * mask, rtol=1e-9, atol=1e-12)
    with pytest.raises(ImportError, match="to_scipy\\(\\) needs scipy"):
        jac.to_scipy()
