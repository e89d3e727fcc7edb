"""Assertions for exercise checks: each failure says what was expected, what came back and the likely cause."""
from __future__ import annotations

import contextlib
import os
import re
import sysconfig
import traceback
from collections.abc import Callable, Mapping

import numpy as np


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message is shown to the learner as is."""


class Unanswered(CheckFailed):
    """The answer is still the stub."""


class AnswerRaised(CheckFailed):
    """The learner's function raised; `original` is its exception."""

    def __init__(self, message: str, original: BaseException):
        super().__init__(message)
        self.original = original


def fail(message: str) -> None:
    """Fail the running check with `message`."""
    raise CheckFailed(message)


class Answer:
    """Wraps the learner's function so its exceptions become messages naming the exception and the line."""

    def __init__(self, fn: Callable, name: str, forbid: tuple[str, ...] = ()):
        self.fn, self.name, self.forbid = fn, name, tuple(forbid)

    def _run(self, args, kwargs):
        """Call the learner's function, watching the question's forbidden calls where it runs."""
        from llmbook.grading.forbid import forbidding
        from llmbook.grading.remote import Remote
        if isinstance(self.fn, Remote):
            return self.fn.call(args, kwargs, forbid=self.forbid)
        with forbidding(self.forbid):
            return self.fn(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        try:
            return self._run(args, kwargs)
        except NotImplementedError as e:
            if _raised_by_stub(e):
                raise Unanswered(f"{self.name} still raises NotImplementedError: replace that line "
                                 f"with your code") from None
            raise AnswerRaised(f"{self.name}({_args(args, kwargs)}) raised "
                               f"{_exception(e)}", e) from None
        except Exception as e:  # noqa: BLE001 - any learner exception is reported, never raised
            if type(e).__name__ == "ForbiddenCall":       # raised here or in the grading worker
                raise CheckFailed(f"{self.name}: {e}") from None
            raise AnswerRaised(f"{self.name}({_args(args, kwargs)}) raised {_exception(e)}", e) from None


def _raised_by_stub(e: BaseException) -> bool:
    """True when a bare `raise NotImplementedError` (the stub) raised `e`."""
    return not e.args


def _exception(e: BaseException) -> str:
    """'ValueError: message (at `line`)', the line being the innermost one of the learner's own code."""
    message = short_message(str(e))
    text = f"{type(e).__name__}: {message}" if message else type(e).__name__
    line = learner_line(e)
    return text + (f" (at `{line}`)" if line else "")


def learner_line(e: BaseException) -> str:
    """The innermost line of the learner's own code in `e`'s traceback ('' if none)."""
    line = getattr(e, "llmbook_line", "")      # set when the exception came from the grading worker
    if line:
        return line
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.line and _is_learner_file(f.filename)]
    return frames[-1].line.strip() if frames else ""


_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\]( name: \S*)?")


def short_message(text: str) -> str:
    """An exception's message on one line: TensorFlow's `{{function_node ...}}` and `[Op:...]` removed."""
    lines = [ln.strip() for ln in _TF_NOISE.sub(" ", text).splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= 300 else first[:297] + "..."


_LIBRARY_DIRS = tuple({os.path.dirname(os.path.dirname(__file__)), sysconfig.get_paths()["stdlib"],
                       sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


def _is_learner_file(filename: str) -> bool:
    """False for llmbook's own files, the standard library and installed packages."""
    path = os.path.abspath(filename)
    return not path.startswith(_LIBRARY_DIRS) and "site-packages" not in path and "dist-packages" not in path


def _args(args, kwargs) -> str:
    """A short description of call arguments: shapes for arrays, values for small scalars."""
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def describe(x) -> str:
    """Type and shape of an array-like, or the repr of a small value."""
    mod = type(x).__module__.split(".")[0]
    if mod in ("torch", "tensorflow") or isinstance(x, np.ndarray):
        dtype = str(getattr(x, "dtype", "")).replace("torch.", "").replace("<dtype: '", "").rstrip("'>")
        kind = {"torch": "tensor", "tensorflow": "tf tensor"}.get(mod, "array")
        return f"<{kind} {tuple(x.shape)} {dtype}>"
    if isinstance(x, (list, tuple)) and len(x) > 6:
        return f"<{type(x).__name__} of {len(x)}>"
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


def to_numpy(x, what: str = "the result") -> np.ndarray:
    """A NumPy copy of a NumPy/PyTorch/TensorFlow value or nested list; fails with a message if not numeric."""
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        return x.detach().cpu().numpy()
    if mod == "tensorflow" or hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return np.asarray(x.numpy())
    if x is None:
        fail(f"{what} is None: did you forget a `return`?")
    try:
        out = np.asarray(x)
    except (TypeError, ValueError) as e:
        fail(f"{what} should be numeric, got {describe(x)} ({e})")
    if out.dtype == object or not np.issubdtype(out.dtype, np.number) and out.dtype != bool:
        fail(f"{what} should be numeric, got {describe(x)}")
    return out


def expect_type(x, types, expected: str, hint: str = "") -> None:
    """Fail unless `x` is an instance of `types` (`expected` names them for the message)."""
    if not isinstance(x, types):
        fail(f"expected {expected}, got {describe(x)} of type {type(x).__name__}" + (f" — {hint}" if hint else ""))


def expect_choice(answer, name: str, choices: str = "ABCDE") -> str:
    """A multiple-choice answer: one letter of `choices` as a string (any case, spaces ignored), returned upper-case."""
    if not isinstance(answer, str) or answer.strip().upper() not in tuple(choices):
        fail(f'{name} should be one of the letters "{choices[0]}" to "{choices[-1]}" as a string, got {answer!r}')
    return answer.strip().upper()


def expect_scalar(x, what: str = "the result") -> float:
    """The float value of a Python/NumPy/0-d tensor scalar; fails for arrays with more than one element."""
    arr = to_numpy(x, what)
    if arr.ndim != 0:
        fail(f"expected {what} to be a single number, got an array of shape {arr.shape}")
    return float(arr)


def expect_shape(x, shape: tuple, what: str = "the result", hint: str = "") -> None:
    """Fail unless `x` has exactly `shape`; mention a transpose when the axes are swapped."""
    got = tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)
    shape = tuple(shape)
    if got != shape:
        why = hint or ("axes swapped? (a transpose, or the wrong axis)" if got == shape[::-1] and got != shape
                       else "")
        fail(f"expected {what} of shape {shape}, got {got}" + (f" — {why}" if why else ""))


def expect_dtype(x, dtype: str, what: str = "the result", hint: str = "") -> None:
    """Fail unless str(x.dtype) ends with `dtype` (works for NumPy, torch and TF dtypes)."""
    got = str(x.dtype).replace("torch.", "").replace("<dtype: '", "").rstrip("'>")
    if got != dtype:
        fail(f"expected {what} with dtype {dtype}, got {got}" + (f" — {hint}" if hint else ""))


@contextlib.contextmanager
def hints_on_error(hints: Mapping[str, str]):
    """Inside the block, add hints[key] to the message of an answer's exception whose text contains key."""
    try:
        yield
    except AnswerRaised as e:
        extra = [hint for key, hint in hints.items() if key in str(e)]
        if not extra:
            raise
        raise AnswerRaised(f"{e} — {extra[0]}", e.original) from None


def expect_raises(error: type[BaseException], fn: Callable, *args, why: str = "", **kwargs) -> None:
    """Fail unless calling the (wrapped) answer raises `error`; other exceptions and no exception both fail."""
    try:
        result = fn(*args, **kwargs)
    except AnswerRaised as e:
        if isinstance(e.original, error):
            return
        fail(f"expected {error.__name__}{' ' + why if why else ''}, but {e}")
    except error:
        return
    fail(f"expected {error.__name__}{' ' + why if why else ''}, but it returned {describe(result)}")


def expect_close(got, want, what: str = "the result", *, rtol: float = 1e-5, atol: float = 1e-6,
                 likely: Mapping[str, object] | None = None, hint: str = "") -> None:
    """Fail unless `got` matches `want` (shape, then values); name the first of `likely` wrong variants it equals.

    `likely` maps a cause ("forgot the tanh") to the value a program with that bug returns. The message
    then says which bug the answer's numbers match, instead of only that they differ.
    """
    got_np = to_numpy(got, what)
    want = np.asarray(want)
    cause = _matching_cause(got_np, likely or {}, rtol, atol)
    if got_np.shape != want.shape:
        suffix = cause or hint or ("axes swapped? (a transpose, or the wrong axis)" if got_np.shape == want.shape[::-1]
                                   else "")
        fail(f"expected {what} of shape {want.shape}, got {got_np.shape}" + (f" — {suffix}" if suffix else ""))
    if _close(got_np, want, rtol, atol):
        return
    if np.issubdtype(got_np.dtype, np.floating) and np.isnan(got_np).any() and not np.isnan(want).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(got_np))[0])
        why = cause or hint or ("a 0/0 (a sum or count that is zero: an empty mask or normaliser?) or inf - inf "
                                "after an overflow (subtract the max before exp)?")
        fail(f"{what} has NaN at index {idx} where {_num(want[idx])} was expected — {why}")
    if want.ndim == 0:
        msg = f"expected {what} = {_num(want)}, got {_num(got_np)}"
    else:
        g, w = got_np.astype(np.float64), want.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(g - w)
        diff = np.where(g == w, 0.0, np.where(np.isnan(diff), np.inf, diff))   # equal infinities agree
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
        msg = f"{what}: expected {_num(want[idx])} at index {idx}, got {_num(got_np[idx])}"
    why = cause or hint
    fail(msg + (f" — {why}" if why else ""))


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    if a.shape != b.shape:
        return False
    try:
        return bool(np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True))
    except (TypeError, ValueError):
        return False


def _matching_cause(got: np.ndarray, likely: Mapping[str, object], rtol: float, atol: float) -> str:
    if got.size and np.issubdtype(got.dtype, np.number) and not np.any(got):
        return ""      # an all-zero answer (a stub-like `return 0`) matches mistakes by accident: name none
    for cause, value in likely.items():
        if _close(got, np.asarray(to_numpy(value)), rtol, atol):
            return cause
    return ""


def _num(x) -> str:
    """A number (or small array) printed with 6 significant digits, the same on every platform."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        v = arr.item()
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    return np.array2string(arr, precision=4, separator=", ", threshold=12)
