"""Reproducible studies (library functions; the CLI and the benchmarks reuse them)."""

from numdiffx.studies._mlp import MLP as MLP
from numdiffx.studies._mlp import make_mlp as make_mlp
from numdiffx.studies.delta import DEFAULT_DELTAS as DEFAULT_DELTAS
from numdiffx.studies.delta import DeltaRecord as DeltaRecord
from numdiffx.studies.delta import delta_sweep as delta_sweep
from numdiffx.studies.delta import format_table as format_table
from numdiffx.studies.problems import PROBLEMS as PROBLEMS
from numdiffx.studies.problems import Problem as Problem
from numdiffx.studies.problems import problem as problem

__all__ = ["DEFAULT_DELTAS", "MLP", "PROBLEMS", "DeltaRecord", "Problem", "delta_sweep",
           "format_table", "make_mlp", "problem"]
