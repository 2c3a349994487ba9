"""The result of an operation on trees: a DiffResult whose fields are trees."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from numdiffx.backends import register_result_type, to_host

from .result import DiffResult, Status
from .trees import element_label, tree_paths, tree_structure

__all__ = ["TreeDiffResult", "tree_map", "tree_result"]


@dataclass(frozen=True)
class TreeDiffResult(DiffResult):
    """A :class:`DiffResult` whose value, error, step and status are trees (the layout of
    the operation's value); statuses are named by path: ``['w'][2, 3]``."""

    def _codes(self) -> list[tuple[str, np.ndarray]]:
        return [(path, np.asarray(to_host(s))) for path, s in tree_paths(self.status)
                if s is not None]

    @property
    def success(self) -> Any:
        return tree_map(lambda s: s == int(Status.SUCCESS), self.status)

    @property
    def status_names(self) -> Any:  # type: ignore[override]
        names = np.array([s.name for s in Status])
        return tree_map(lambda s: names[np.asarray(to_host(s)).astype(np.int64)], self.status)

    def status_counts(self) -> dict[str, int]:
        found = np.zeros(len(Status), dtype=np.int64)
        for _, codes in self._codes():
            found += np.bincount(codes.ravel().astype(np.int64), minlength=len(Status))
        return {Status(c).name: int(k) for c, k in enumerate(found) if k}

    def __repr__(self) -> str:
        return (f"TreeDiffResult({len(self._codes())} leaves, nfev={self.nfev}, "
                f"status={self.status_counts()})")

    def raise_for_status(self) -> TreeDiffResult:
        """Raise ``FloatingPointError`` naming the failing elements by path."""
        lines: list[str] = []
        total = 0
        for path, codes in self._codes():
            for flat in np.flatnonzero(codes != Status.SUCCESS):
                total += 1
                if len(lines) < 10:
                    code = Status(int(codes.ravel()[flat]))
                    lines.append(f"{code.name} at {element_label(path, codes.shape, int(flat))}"
                                 f": {code.message}")
        if total:
            more = f"\n  ... and {total - len(lines)} more" if total > len(lines) else ""
            raise FloatingPointError(f"{total} element(s) did not succeed:\n  "
                                     + "\n  ".join(lines) + more)
        return self


register_result_type(TreeDiffResult, ("value", "error", "step", "status"), ("nfev",))


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """``fn`` applied to every leaf that is not None."""
    record = tree_structure(tree)
    return record.unflatten([None if v is None else fn(v) for v in record.leaves])


def tree_result(full: bool, parts: Sequence[Any], assemble: Callable[[str, Sequence[Any]], Any],
            step: Callable[[Sequence[Any]], Any] | None = None) -> Any:
    """The value (or a TreeDiffResult) from the flat results ``parts``, one per group."""
    if not full:
        return assemble("value", parts)
    error = None if any(r.error is None for r in parts) else assemble(
        "error", [r.error for r in parts])
    steps = step([r.step for r in parts]) if step is not None else parts[0].step
    return TreeDiffResult(assemble("value", [r.value for r in parts]), error, steps,
                          max(r.nfev for r in parts), assemble("status", [r.status for r in parts]))
