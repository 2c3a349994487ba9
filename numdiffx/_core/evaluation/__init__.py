"""Evaluation: calling f on perturbed points.

``evaluator`` holds the local modes (batched, vmap, loop) with the sentinel row and the
per-call vmap-to-loop fallback; ``executor`` maps sub-batches over any
``concurrent.futures``-like executor or a dask client, wrapping one local evaluator per
task; ``points`` builds the perturbed points of a plan's directions, chunked to a memory
budget, and combines f's values with the stencil weights.
"""

from .evaluator import (
                        EVALUATION_MODES,
                        EvaluationWarning,
                        Evaluator,
                        EvaluatorSpec,
                        is_16_bit_float,
)
from .executor import EvaluationError, ExecutorEvaluator, check_executor

__all__ = ["EVALUATION_MODES", "EvaluationError", "EvaluationWarning", "Evaluator",
           "EvaluatorSpec", "ExecutorEvaluator", "check_executor", "is_16_bit_float"]
