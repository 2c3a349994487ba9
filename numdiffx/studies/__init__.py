"""Reproducible studies (library functions; the CLI and the asv benchmarks reuse them).

Both studies reproduce and extend the report "JacrevFinite: Finite Difference approach to
replacing PyTorch Autograd", B. Hendrata, 2024 (:data:`REPORT`): the delta-instability
study (its Figure 1) and the timing study (its section 5.2).
"""

from numdiffx.studies._machine import machine_info as machine_info
from numdiffx.studies._mlp import MLP as MLP
from numdiffx.studies._mlp import make_mlp as make_mlp
from numdiffx.studies._networks import network_for as network_for
from numdiffx.studies._report import REPORT as REPORT
from numdiffx.studies.delta import DEFAULT_DELTAS as DEFAULT_DELTAS
from numdiffx.studies.delta import DeltaRecord as DeltaRecord
from numdiffx.studies.delta import delta_sweep as delta_sweep
from numdiffx.studies.delta import format_table as format_table
from numdiffx.studies.delta import kink_counts as kink_counts
from numdiffx.studies.problems import PROBLEMS as PROBLEMS
from numdiffx.studies.problems import Problem as Problem
from numdiffx.studies.problems import problem as problem
from numdiffx.studies.timing import TimingRecord as TimingRecord
from numdiffx.studies.timing import format_timing as format_timing
from numdiffx.studies.timing import jacrev_finite as jacrev_finite
from numdiffx.studies.timing import timing as timing

__all__ = ["DEFAULT_DELTAS", "MLP", "PROBLEMS", "REPORT", "DeltaRecord", "Problem",
           "TimingRecord", "delta_sweep", "format_table", "format_timing", "jacrev_finite",
           "kink_counts", "machine_info", "make_mlp", "network_for", "problem", "timing"]
