"""The evaluation record behind ``checkpoint=PATH``: every evaluation of f in SQLite.

An expensive f (a simulation, an external program) makes a Jacobian take hours; a crash
must not lose the evaluations already made. The evaluator commits each evaluation to an
embedded SQLite file as it completes -- a point in a loop, a chunk in a batched call, a
task on an executor -- and looks every unit up before f is called, so a rerun of the same
call evaluates only what is missing and returns the same bits.

A file holds *sections*, one per computation (an evaluator): its identity is the
operation, the options that decide the points, the evaluation mode, the differentiated
arguments' layout, x's dtype, shape and bytes, the other arguments, f's name and the
shape and dtype of f(x). A unit of a section is keyed by the bytes of its points (and
how they were evaluated), so no stored value ever answers for another point. A call
reads only its own section: another x, other options or another f are kept apart. The
one mismatch refused is the dangerous one: the same call whose f(x) is not the stored
f(x) -- f changed, or is not deterministic -- whose stored values would be wrong.

The file is written in WAL mode with ``synchronous=NORMAL``: a commit survives the
process being killed (SIGKILL) at any moment, and costs ~50 us, not an fsync.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from typing import Any

import numpy as np

from numdiffx.backends import to_host

__all__ = ["FORMAT", "Section", "fingerprint", "open_section"]

#: Version of the file layout; a file of another version is refused.
FORMAT = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS numdiffx_record (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sections (
    id INTEGER PRIMARY KEY,
    identity TEXT UNIQUE NOT NULL,   -- sha256 of the description
    description TEXT NOT NULL,       -- JSON: what the section belongs to
    f0 BLOB NOT NULL,                -- f(x), the fingerprint of f checked on every open
    f0_dtype TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    section INTEGER NOT NULL REFERENCES sections(id),
    key BLOB NOT NULL,               -- sha256 of how and where f was evaluated
    value BLOB NOT NULL,             -- f's values, C order
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    points INTEGER NOT NULL,         -- perturbed points this unit evaluated
    nfev INTEGER NOT NULL,           -- evaluations it counted (sentinel rows included)
    PRIMARY KEY (section, key));
"""


def fingerprint(value: Any, host: Any) -> str:
    """Words that identify a non-differentiated argument of f (arrays by their bytes)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            a = np.ascontiguousarray(host(value))
        except Exception:  # noqa: BLE001 - not an array after all: its type stands for it
            return type(value).__qualname__
        return f"array {a.dtype.str} {a.shape} {hashlib.sha256(a.tobytes()).hexdigest()}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({', '.join(fingerprint(v, host) for v in value)})"
    return type(value).__qualname__


def identity(evaluator: Any, opts: Any) -> dict[str, Any]:
    """What an evaluator's computation's evaluations belong to: the section's key."""
    spec, f = evaluator.spec, evaluator.spec.fun
    x = np.ascontiguousarray(to_host(evaluator.x0))
    # the name only, not the module: a script run as __main__ or imported is one f
    name = getattr(f, "__qualname__", None) or type(f).__qualname__
    return {"format": FORMAT, "operation": opts.operation, "method": repr(opts.method),
            "step": repr(opts.rule), "evaluation": spec.mode, "chunk_size": opts.chunk_size,
            "task_size": opts.task_size, "memory_budget": opts.memory_budget,
            "batch_axis": spec.batch_axis, "variables": spec.variables,
            "shapes": spec.shapes, "f": name,
            "x": f"{x.dtype.str} {hashlib.sha256(x.tobytes()).hexdigest()}",
            "args": [fingerprint(a, to_host) for i, a in enumerate(spec.args)
                     if i not in spec.variables],
            "f(x)": f"{evaluator.f0.dtype} {evaluator.out_shape}"}


def _connect(path: str) -> sqlite3.Connection:
    try:
        # used by one thread at a time (the caller's); closed by whichever collects it
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")  # stays DELETE where WAL is unavailable
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM numdiffx_record WHERE name = 'format'").fetchone()
        if row is None:
            conn.execute("INSERT OR IGNORE INTO numdiffx_record VALUES ('format', ?)",
                         (str(FORMAT),))
        elif row[0] != str(FORMAT):
            conn.close()
            raise ValueError(f"checkpoint={path!r} was written by another version of numdiffx "
                             f"(record format {row[0]}, this one reads {FORMAT}); pass another "
                             "path, or delete the file to start afresh.")
    except sqlite3.Error as exc:
        raise ValueError(f"checkpoint={path!r} cannot be used as an evaluation record "
                         f"({type(exc).__name__}: {exc}); pass the path of a new or existing "
                         "numdiffx checkpoint file in a writable directory.") from None
    return conn


def open_section(path: str, description: dict[str, Any], f0: np.ndarray) -> Section:
    """The section of ``path`` this computation belongs to, created when new.

    ``f0`` is f(x) on the host. A section of the same description whose f(x) differs is
    refused with a ValueError saying so: its values belong to another f."""
    if os.path.isdir(path):
        raise ValueError(f"checkpoint={path!r} is a directory; pass a file path, e.g. "
                         f"{os.path.join(path, 'jacobian.sqlite')!r}.")
    conn = _connect(path)
    words = json.dumps(description, sort_keys=True, default=str)
    identity = hashlib.sha256(words.encode()).hexdigest()
    f0 = np.ascontiguousarray(f0)
    conn.execute("INSERT OR IGNORE INTO sections (identity, description, f0, f0_dtype, created) "
                 "VALUES (?, ?, ?, ?, ?)", (identity, words, f0.tobytes(), f0.dtype.str,
                                            time.time()))
    sid, stored, stored_dtype = conn.execute(
        "SELECT id, f0, f0_dtype FROM sections WHERE identity = ?", (identity,)).fetchone()
    if stored != f0.tobytes() or stored_dtype != f0.dtype.str:
        conn.close()
        raise ValueError(_changed_f(path, description, f0, stored, stored_dtype))
    return Section(path, conn, sid)


def _changed_f(path: str, description: dict[str, Any], f0: np.ndarray, stored: bytes,
               stored_dtype: str) -> str:
    before = np.frombuffer(stored, dtype=np.dtype(stored_dtype)).reshape(-1)
    now = f0.reshape(-1)
    where = ""
    if before.shape == now.shape:
        differ = np.flatnonzero(~((before == now) | (np.isnan(before) & np.isnan(now))))
        if differ.size:
            i = int(differ[0])
            where = (f" (output element {i}: {now[i]!r} now, {before[i]!r} stored; "
                     f"{differ.size} element(s) differ)")
    return (f"checkpoint={path!r} holds evaluations of this same call ({description['operation']}"
            f" of {description['f']} at this x with these options), but f(x) is not the value "
            f"stored with them{where}: f has changed, or is not deterministic (seed its random "
            "numbers), so the stored values cannot stand for this f. Delete the file, or pass "
            "another checkpoint path, to evaluate afresh.")


class Section:
    """One computation's evaluations in the record: looked up by key, committed at once."""

    def __init__(self, path: str, conn: sqlite3.Connection, sid: int) -> None:
        self.path, self._conn, self._id = path, conn, sid
        self._keys = {bytes(k) for (k,) in conn.execute(
            "SELECT key FROM evaluations WHERE section = ?", (sid,))}

    def __del__(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing must never raise here
                pass

    @staticmethod
    def key(kind: str, mode: str, points: np.ndarray) -> bytes:
        """The key of a unit: how (``kind``, ``mode``) and where (the points' bytes)."""
        points = np.ascontiguousarray(points)
        h = hashlib.sha256(f"{kind} {mode} {points.dtype.str} {points.shape}".encode())
        h.update(points.tobytes())
        return h.digest()

    def get(self, key: bytes) -> tuple[np.ndarray, int] | None:
        """(values, nfev) of a stored unit, or None."""
        if key not in self._keys:
            return None
        value, dtype, shape, nfev = self._conn.execute(
            "SELECT value, dtype, shape, nfev FROM evaluations WHERE section = ? AND key = ?",
            (self._id, key)).fetchone()
        out = np.frombuffer(value, dtype=np.dtype(dtype)).reshape(json.loads(shape)).copy()
        return out, int(nfev)

    def put(self, key: bytes, values: np.ndarray, points: int, nfev: int) -> None:
        """Commit one unit (its own transaction: on disk when this returns)."""
        values = np.ascontiguousarray(values)
        self._conn.execute(
            "INSERT OR IGNORE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._id, key, values.tobytes(), values.dtype.str, json.dumps(values.shape),
             int(points), int(nfev)))
        self._keys.add(key)

    def saved(self) -> int:
        """Perturbed points on record for this computation."""
        (count,) = self._conn.execute(
            "SELECT COALESCE(SUM(points), 0) FROM evaluations WHERE section = ?",
            (self._id,)).fetchone()
        return int(count)

    def resume_hint(self) -> str:
        """Words for an error: what is saved, and how to go on from it."""
        return (f"{self.saved()} evaluation(s) of f are saved in checkpoint={self.path!r}; "
                "rerun the same call with the same checkpoint to evaluate only the missing ones")
