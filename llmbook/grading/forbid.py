"""Functions a question asks the learner to write: a call to one of them while the answer runs fails it.

A question declares them by dotted name (`question(..., forbid=("torch.nn.functional.cross_entropy",))`).
While the learner's function runs, a profiler (sys.setprofile) watches every Python and C call and
records a call to any of those functions, however it was reached: through an alias, a library class
that calls it, or the course package's own version. The answer then fails with a message that names
the function. It runs where the answer runs: in the learner's kernel for the public checks, in the
grading worker for the batch grader.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Iterable


class ForbiddenCall(Exception):
    """The learner's function called a function its question asks them to write themselves."""


@functools.lru_cache(maxsize=None)
def resolve(name: str):
    """The object behind a dotted name ('torch.nn.functional.cross_entropy'); ValueError if there is none.

    None when its module exists but needs a library that is not installed here (llmbook.tf without
    TensorFlow): nothing can call it, so there is nothing to watch.
    """
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module != e.name and not module.startswith(e.name + "."):
                return None
            continue
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise ValueError(f"forbid: {name!r} names no importable function; give its full dotted path")


def _keys(obj) -> list:
    """What the profiler sees when `obj` is called: its code object (Python) or the object itself (C)."""
    fn = getattr(obj, "__func__", obj)
    code = getattr(fn, "__code__", None)
    return [code] if code is not None else [fn]


@contextlib.contextmanager
def forbidding(names: Iterable[str]):
    """Run the block with the functions `names` watched; raise ForbiddenCall after it if one was called."""
    names = tuple(names)
    if not names:
        yield
        return
    watched = {key: name for name in names if resolve(name) is not None for key in _keys(resolve(name))}
    called: list[str] = []

    def profile(frame, event, arg):
        key = frame.f_code if event == "call" else arg if event == "c_call" else None
        try:
            name = watched.get(key)
        except TypeError:       # an unhashable callable
            return
        if name is not None and name not in called:
            called.append(name)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        still_ours = sys.getprofile() is profile
        sys.setprofile(previous)
    if not still_ours:
        raise ForbiddenCall("your function switched off the grader's watch on library calls "
                            "(sys.setprofile): answers may not do that")
    if called:
        raise ForbiddenCall(f"this question asks you to write it yourself, but your function called "
                            f"{', '.join(called)}: replace that call with your own code")
