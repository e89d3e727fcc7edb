"""Functions a question asks the learner to write: a call to one of them while the answer runs fails it.

A question declares them by dotted name (`question(..., forbid=("torch.nn.functional.cross_entropy",))`).
While the learner's function runs, a profiler (sys.setprofile) watches every Python and C call and
records a call to any of those functions, however it was reached: through an alias, a library class
that calls it, or the course package's own version. The answer then fails with a message that names
the function. It fails too when the answer switches the profiler off (even if it switches it back
on), hands work to another thread or process, or copies a function's code object (`_tampering`).
It runs where the answer runs: in the learner's kernel for the public checks, in the grading worker
for the batch grader. Being in the answer's own process, it is a strong deterrent rather than a
proof: code that rewrites the grading worker's own functions can still get around it.
"""
from __future__ import annotations

import _thread
import contextlib
import functools
import importlib
import sys
import types
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


@functools.lru_cache(maxsize=None)
def _tampering() -> dict:
    """Calls that would switch the watch off or move work where it cannot see: key -> what they do.

    The watch follows the thread it runs on, so starting or feeding another thread hides a call from it;
    a copy of a function's code object is a different key. No answer to a question needs either.
    """
    import concurrent.futures
    import multiprocessing.pool
    import multiprocessing.process
    import os
    import subprocess
    import threading
    elsewhere = "ran work on another thread or process, where the grader cannot watch it"
    marks = {sys.setprofile: "switched off the grader's watch on library calls (sys.setprofile)",
             sys.settrace: "switched off the grader's watch on library calls (sys.settrace)",
             threading.setprofile: "switched off the grader's watch on library calls (threading.setprofile)",
             _thread.start_new_thread: elsewhere, os.fork: elsewhere}
    for fn in (threading.Thread.start, concurrent.futures.ThreadPoolExecutor.submit,
               concurrent.futures.ProcessPoolExecutor.submit, multiprocessing.pool.Pool.apply_async,
               multiprocessing.process.BaseProcess.start, subprocess.Popen.__init__):
        marks[fn.__code__] = elsewhere
    return marks


@contextlib.contextmanager
def forbidding(names: Iterable[str]):
    """Run the block with the functions `names` watched; raise ForbiddenCall after it if one was called."""
    names = tuple(names)
    if not names:
        yield
        return
    found = {name: resolve(name) for name in names}                       # None: its library is absent
    watched = {key: name for name, obj in found.items() if obj is not None for key in _keys(obj)}
    called: list[str] = []
    tampered: list[str] = []
    marks, leaving = _tampering(), []

    def profile(frame, event, arg):
        key = frame.f_code if event == "call" else arg if event == "c_call" else None
        try:
            name, mark = watched.get(key), marks.get(key)
        except TypeError:       # an unhashable callable
            return
        if event == "c_call" and isinstance(getattr(arg, "__self__", None), types.CodeType):
            mark = "built a changed copy of a function's code (code.replace)"
        if name is not None and name not in called:
            called.append(name)
        if mark is not None and not leaving and mark not in tampered:
            tampered.append(mark)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        still_ours = sys.getprofile() is profile
        leaving.append(True)                     # our own sys.setprofile below is not tampering
        sys.setprofile(previous)
    if not still_ours:
        tampered.insert(0, "switched off the grader's watch on library calls (sys.setprofile)")
    if tampered:
        raise ForbiddenCall(f"your function {tampered[0]}: answers may not do that")
    if called:
        raise ForbiddenCall(f"this question asks you to write it yourself, but your function called "
                            f"{', '.join(called)}: replace that call with your own code")
