"""Expected values for the public checks, stored as data instead of reference implementations.

A public check asks `expected_value("_q2_reference", counts, 0.75)` for what the reference solution gives
on its fixed inputs. The reference implementations live in the hidden checks; with them loaded (the
instructor's grader, the build) the value is computed, otherwise it is read from
`llmbook/grading/checks/<set>_expected.json`, which `python -m llmbook.grading.build` records by
running the public checks on the solutions with the hidden file loaded. Values are normalised through
the same data form either way, so a check behaves identically with or without the hidden file.
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np

from llmbook.grading.expect import to_numpy


def value_key(name: str, args: tuple, kwargs: dict) -> str:
    """'name:<digest>' of the call: array contents, dtypes and shapes, scalars by type and repr."""
    h = hashlib.sha256()

    def feed(x) -> None:
        if isinstance(x, (list, tuple)):
            h.update(f"{type(x).__name__}{len(x)}(".encode())
            for v in x:
                feed(v)
            h.update(b")")
        elif isinstance(x, dict):
            h.update(f"dict{len(x)}(".encode())
            for k in sorted(x, key=repr):
                feed(k)
                feed(x[k])
            h.update(b")")
        elif x is None or isinstance(x, (bool, int, float, str)):
            h.update(repr((type(x).__name__, x)).encode())
        else:
            arr = np.ascontiguousarray(to_numpy(x))
            h.update(f"A{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())

    feed((tuple(args), dict(kwargs)))
    return f"{name}:{h.hexdigest()[:24]}"


def to_data(v):
    """A JSON-able form of a value (tensors become arrays)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return {"$l" if isinstance(v, list) else "$t": [to_data(x) for x in v]}
    if isinstance(v, dict):
        return {"$d": [[to_data(k), to_data(x)] for k, x in v.items()]}
    arr = np.asarray(to_numpy(v))
    return {"$a": arr.dtype.str, "s": list(arr.shape), "d": arr.ravel().tolist()}


def from_data(d):
    """The value a `to_data` form describes (arrays as NumPy arrays)."""
    if not isinstance(d, dict):
        return d
    if "$l" in d:
        return [from_data(x) for x in d["$l"]]
    if "$t" in d:
        return tuple(from_data(x) for x in d["$t"])
    if "$d" in d:
        return {from_data(k): from_data(x) for k, x in d["$d"]}
    arr = np.array(d["d"], dtype=np.dtype(d["$a"])).reshape(d["s"])
    return arr[()] if arr.ndim == 0 else arr


def stored_file(set_name: str) -> Path:
    return Path(str(resources.files("llmbook.grading") / "checks" / f"{set_name}_expected.json"))


class Expected:
    """`expected_value(name, *args)`: the reference value, computed (hidden checks loaded) or stored."""

    def __init__(self, set_name: str):
        self.set_name = set_name
        self.live: dict = {}               # name -> reference function, from the hidden checks
        self.recording: dict | None = None  # key -> data, filled while the build records
        self._stored: dict | None = None

    def __call__(self, name: str, *args, **kwargs):
        key = value_key(name, args, kwargs)
        if name in self.live:
            data = to_data(self.live[name](*args, **kwargs))
            if self.recording is not None:
                self.recording[key] = data
            return from_data(data)
        stored = self.stored()
        if key not in stored:     # only a wrong answer's diagnosis can get here (tests cover the rest)
            from llmbook.grading.expect import CheckFailed
            raise CheckFailed(f"the result differs from what the public checks expect, in a way they have no "
                              f"stored diagnosis for ({name}); the instructor's checks will say more")
        return from_data(stored[key])

    def stored(self) -> dict:
        if self._stored is None:
            path = stored_file(self.set_name)
            self._stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return self._stored
