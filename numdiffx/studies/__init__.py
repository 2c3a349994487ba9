"""Reproducible studies (library functions; the CLI and the benchmarks reuse them)."""

from numdiffx.studies._mlp import MLP as MLP
from numdiffx.studies._mlp import make_mlp as make_mlp
from numdiffx.studies._networks import network_for as network_for
from numdiffx.studies.delta import DEFAULT_DELTAS as DEFAULT_DELTAS
from numdiffx.studies.delta import DeltaRecord as DeltaRecord
from numdiffx.studies.delta import delta_sweep as delta_sweep
from numdiffx.studies.delta import format_table as format_table
from numdiffx.studies.delta import kink_counts as kink_counts

__all__ = ["DEFAULT_DELTAS", "MLP", "DeltaRecord", "delta_sweep", "format_table", "kink_counts",
           "make_mlp", "network_for"]
