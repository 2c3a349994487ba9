"""``checkpoint=`` and ``progress=`` for :func:`numdiffx.check_grads` on jax functions.

jax's check_grads evaluates f (or, at order > 1, f's jvp or pullback) at ``args +/- eps *
direction`` for each point of its recursion, plus the smaller steps numdiffx adds where
jax's comparison fails. These are the evaluations counted for ``progress=`` (a
:class:`~numdiffx._core.evaluation.progress.Progress`, as in :func:`numdiffx.jacobian`) and
kept in ``checkpoint=PATH`` (the SQLite record of :func:`numdiffx.jacobian`'s
``checkpoint=``): one section per point of the recursion, named by f, the point's label
(``"JVP of VJP"``), the arguments' bytes, the step and the seed, fingerprinted by the
point's primal output; one unit per side and step, one row per output leaf. A rerun of
the same call with the same file evaluates nothing already stored and reaches the same
verdict; another f, other args or another eps is kept apart, and a changed f at the same
args is refused (its f(args) is not the stored one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numdiffx._core.evaluation.progress import Progress
from numdiffx._core.evaluation.record import FORMAT, Section, fingerprint, open_section

__all__ = ["Evaluations"]


class Evaluations:
    """The evaluations of f made by one ``check_grads`` call: counted, and recorded when
    ``checkpoint`` is a path (checked by ``checkpoint_iv``)."""

    def __init__(self, checkpoint: str | None, progress: object, f: Callable[..., Any],
                 leaves: list[Any], treedef: Any, step: float, seed: int, host: Any) -> None:
        self.path, self.progress = checkpoint, Progress(progress)
        self._identity: dict[str, Any] = {}
        if checkpoint is not None:
            self._identity = {
                "format": FORMAT, "operation": "check_grads", "eps": repr(step), "seed": seed,
                "f": getattr(f, "__qualname__", None) or type(f).__qualname__,
                "args": fingerprint(list(leaves), host), "tree": str(treedef)}

    def section(self, label: str, primal: list[np.ndarray]) -> Section | None:
        """The record's section for the point ``label`` whose f(args) is ``primal``."""
        if self.path is None:
            return None
        f0 = np.concatenate([np.ravel(p).astype(np.complex128) for p in primal] or
                            [np.zeros(0, np.complex128)])
        shapes = [f"{p.dtype.str} {p.shape}" for p in primal]
        return open_section(self.path, {**self._identity, "point": label or "f",
                                        "f(x)": shapes}, f0)

    def values(self, section: Section | None, side: str, count: int,
               evaluate: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
        """f's output leaves (wide, on the host) at one side ``side`` (sign and step):
        read from the record when stored there, else evaluated (and stored)."""
        if section is not None:
            keys = [Section.key("check_grads", f"{side} leaf {k}", np.zeros(0))
                    for k in range(count)]
            kept = [section.get(key) for key in keys]
            if all(unit is not None for unit in kept):
                self.progress.expect(1)
                self.progress.add(1, restored=True)
                return [unit[0] for unit in kept if unit is not None]
        self.progress.expect(1)
        out = evaluate()
        self.progress.add(1)
        if section is not None:
            for key, value in zip(keys, out):
                section.put(key, value, 1, 1)
        return out

    def close(self) -> None:
        self.progress.close()
