"""The checks against the framework's own (issue 37, row 3 of its table).

``nd.gradcheck`` (slow and fast mode) and ``nd.gradgradcheck`` / ``torch.autograd``'s,
on a conv2d (2x3x8x8 input, 4x3x3x3 weight) and a small MLP (4x6 input, 8x6 and 3x8
weights, tanh), float64, the same inputs for both. ``track_ratio`` measures both in one
run, interleaved (min of repeats, a warm-up call of each excluded), as
``asv_bench/compare/full_output_and_jax_eager_vs_plain.py`` prints them. Target:
gradcheck and gradgradcheck <= 1.2x torch's, fast mode <= 1.0x torch's fast mode.
"""

from __future__ import annotations

from ._common import SEED, ratio_of_min_times, require

CHECKS = ["gradcheck", "gradcheck fast", "gradgradcheck"]
REPEATS = {"gradcheck": 5, "gradcheck fast": 15, "gradgradcheck": 3}


def _case(case: str):
    """(f, inputs) of a case, the inputs requiring grad."""
    import torch

    g = torch.Generator().manual_seed(SEED)

    def leaf(*shape: int):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    if case == "conv2d":
        return torch.nn.functional.conv2d, (leaf(2, 3, 8, 8), leaf(4, 3, 3, 3))

    def mlp(x, w1, w2):
        return torch.tanh(x @ w1.T) @ w2.T

    return mlp, (leaf(4, 6), leaf(8, 6), leaf(3, 8))


class ChecksRatio:
    """numdiffx's check time / torch's, the same check, measured in one run."""

    params = (["conv2d", "MLP"], CHECKS)
    param_names = ["case", "check"]
    unit = "ratio"
    timeout = 600
    smoke_overrides = {"params": (["MLP"], ["gradcheck fast"])}  # the test suite's one

    def setup(self, case, check):
        require("torch")
        import torch

        import numdiffx as nd

        f, inputs = _case(case)
        if check == "gradgradcheck":
            self.a = lambda: nd.gradgradcheck(f, inputs)
            self.b = lambda: torch.autograd.gradgradcheck(f, inputs)
        else:
            fast = check == "gradcheck fast"
            self.a = lambda: nd.gradcheck(f, inputs, fast_mode=fast)
            self.b = lambda: torch.autograd.gradcheck(f, inputs, fast_mode=fast)

    def track_ratio(self, case, check):
        return ratio_of_min_times(self.a, self.b, repeats=REPEATS[check])
