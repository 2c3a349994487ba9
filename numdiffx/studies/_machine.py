"""What a study ran on: written into its JSON and its figure title."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["cpu_name", "machine_info", "machine_line", "study_document"]


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    return platform.processor() or platform.machine() or "unknown CPU"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def machine_info() -> dict[str, object]:
    """CPU, cores, OS, Python and the versions of the array libraries already imported."""
    versions = {}
    for name in ("numpy", "torch", "jax"):
        module = sys.modules.get(name)  # never import a library just to report it
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    info: dict[str, object] = {"cpu": cpu_name(), "cores": _cores(),
                               "platform": platform.platform(),
                               "python": platform.python_version(), "versions": versions}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    info["thread_env"] = {k: os.environ[k] for k in _THREAD_VARS if k in os.environ}
    return info


# environment variables that cap the threads of the BLAS / OpenMP pools
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def machine_line(info: dict[str, object] | None = None) -> str:
    """``"<cpu>, <n> cores[, torch <k> threads][, OMP_NUM_THREADS=...]"`` for a title."""
    info = machine_info() if info is None else info
    parts = [str(info["cpu"]), f"{info['cores']} cores"]
    if "torch_threads" in info:
        parts.append(f"torch {info['torch_threads']} thread(s)")
    thread_env = info.get("thread_env")
    if isinstance(thread_env, dict):
        parts += [f"{k}={v}" for k, v in thread_env.items()]
    return ", ".join(parts)


def study_document(study: str, records: Sequence[Any], **settings: object) -> dict[str, object]:
    """One JSON-ready document: the study, the cited report, the machine, the settings and
    every record (errors and times together)."""
    from ._report import REPORT

    return {"study": study, "report": REPORT, "machine": machine_info(),
            "settings": settings, "records": [r.as_dict() for r in records]}
