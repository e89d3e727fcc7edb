"""The student's side of batch grading: a sandboxed process that runs a submission's cells.

`Worker` (used by the grader) starts `python -m llmbook.grading.worker` in its own session, inside
bubblewrap when `bwrap` exists: read-only file system, the submission's temporary folder as the only
writable place, fresh /tmp, /proc and /dev, no network, its own PID namespace, the hidden checks, the
submissions and the score files masked, and an environment of a few harmless variables. The process
sets its own resource limits (CPU time, memory, file size, processes, open files) before any student
code runs. It then answers requests on two dedicated pipes (llmbook.grading.remote): run a cell, look
up a name, call a student's function, compute gradients. It never sees a check, an expected value or
a score.
"""
from __future__ import annotations

import copy
import linecache
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from llmbook.grading import remote
from llmbook.grading.forbid import forbidding

LIMITS = {"cpu_s": 1800, "memory_bytes": 16 << 30, "file_bytes": 256 << 20, "processes": 4096, "files": 1024}
KEEP_ENV = ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "TF_CPP_MIN_LOG_LEVEL",
            "CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class CellTimeout(BaseException):
    """A cell ran past its time limit."""


def sandbox_available() -> bool:
    """True when bubblewrap is installed and can start a sandbox here."""
    if not shutil.which("bwrap"):
        return False
    try:
        return subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--dev", "/dev", "--proc", "/proc",
                               "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class Worker:
    """A running worker process and the grader's end of its pipes."""

    def __init__(self, folder: Path, sandbox: bool, hide: list[Path] = (), limits: dict | None = None):
        self.folder, self.sandbox, self.hide = Path(folder), sandbox, [Path(p) for p in hide]
        self.limits = {**LIMITS, **(limits or {})}
        self.proc: subprocess.Popen | None = None
        self.channel: remote.Channel | None = None

    def command(self, fd_in: int, fd_out: int) -> list[str]:
        """The command line that starts the worker (inside bwrap when sandboxed)."""
        cmd = [sys.executable, "-m", "llmbook.grading.worker", str(fd_in), str(fd_out)]
        if not self.sandbox:
            return cmd + ["--keeper"]
        box = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
               "--tmpfs", str(Path.home()), "--unshare-all", "--die-with-parent", "--new-session",
               "--cap-drop", "ALL"]
        import site

        import llmbook
        masked = [Path("/tmp").resolve(), Path.home().resolve()]
        keep = {Path(p).resolve() for p in (sys.base_prefix, sys.prefix, Path(sys.executable).resolve().parents[1],
                                             Path(llmbook.__file__).resolve().parents[1], *site.getsitepackages())}
        for path in sorted(keep):                # parents before children, so no bind hides another
            if any(m == path or m in path.parents for m in masked) and path.exists():
                box += ["--ro-bind", str(path), str(path)]   # Python or llmbook under a masked /tmp or home
        needed = [Path(llmbook.__file__).resolve().parent, Path(sys.prefix).resolve(), self.folder.resolve()]
        for path in self.hide:
            path = path.resolve()
            if any(n == path or path in n.parents for n in needed):
                continue                      # masking it would hide the worker's own Python or folder
            if path.is_dir():
                box += ["--tmpfs", str(path.resolve())]
            elif path.exists():
                box += ["--ro-bind", "/dev/null", str(path.resolve())]
        box += ["--bind", str(self.folder), str(self.folder), "--chdir", str(self.folder)]
        return box + ["--"] + cmd

    def env(self) -> dict:
        """The worker's whole environment: no grader variables, no secrets."""
        import llmbook
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.folder), "LANG": "C.UTF-8",
               "PYTHONPATH": str(Path(llmbook.__file__).resolve().parents[1]), "LLMBOOK_GRADING": "batch",
               "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
        env.update({k: os.environ[k] for k in KEEP_ENV if k in os.environ})
        return env

    def start(self) -> None:
        r_in, w_in = os.pipe()       # grader -> worker
        r_out, w_out = os.pipe()     # worker -> grader
        log = open(self.folder / ".worker.log", "ab")  # noqa: SIM115 - closed below
        try:
            self.proc = subprocess.Popen(self.command(r_in, w_out), pass_fds=(r_in, w_out), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log, cwd=self.folder, env=self.env(),
                                         start_new_session=True)
        finally:
            log.close()
            os.close(r_in)
            os.close(w_out)
        self.channel = remote.Channel(r_out, w_in, secrets.token_hex(16), trusted=True)
        self.channel.send({"op": "hello", "limits": self.limits})

    def kill(self) -> None:
        """End the worker and everything it started (its own session), close the pipes."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.channel is not None:
            for fd in (self.channel.rfd, self.channel.wfd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.proc = self.channel = None

    def ask(self, op: str, deadline_s: float | None, *args, **fields):
        """Send request `op` and return its answer; WorkerDied / WorkerTimeout when the worker fails."""
        import time
        self.channel.deadline = None if deadline_s is None else time.monotonic() + deadline_s
        try:
            return self.channel.request({"op": op, **fields}, args, {})
        finally:
            self.channel.deadline = None


# --- the worker process ------------------------------------------------------------------------


def _set_limits(limits: dict) -> None:
    for name, key in (("RLIMIT_CPU", "cpu_s"), ("RLIMIT_AS", "memory_bytes"), ("RLIMIT_FSIZE", "file_bytes"),
                      ("RLIMIT_NPROC", "processes"), ("RLIMIT_NOFILE", "files"), ("RLIMIT_CORE", None)):
        value = int(limits[key]) if key else 0
        try:
            soft, hard = resource.getrlimit(getattr(resource, name))
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):
            pass


class _Shell:
    """What `get_ipython()` returns in a worker: magics and shell commands do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    def run_cell_magic(self, *args, **kwargs):
        return None

    def system(self, *args, **kwargs):
        return None

    getoutput = system


def _cell(channel, msg, arrays):
    from IPython.core.inputtransformer2 import TransformerManager
    index, source = int(msg["index"]), str(msg["source"])
    filename = f"<cell {index}>"
    try:
        code = TransformerManager().transform_cell(source)
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    except Exception:  # noqa: BLE001 - a syntax error is reported by compile below
        code = source

    def on_alarm(signum, frame):
        raise CellTimeout(f"the cell ran past {msg['timeout']} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(msg["timeout"]), 0.5)
    error = ""
    try:
        exec(compile(code, filename, "exec"), _NAMESPACE)  # noqa: S102 - the student's own cell, in the sandbox
    except BaseException as e:  # noqa: BLE001 - every failure of a cell is reported as data
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]
    finally:
        while True:
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except CellTimeout:
                continue
    return error, {}, []


def _get(channel, msg, arrays):
    name = str(msg["name"])
    if name not in _NAMESPACE:
        return None, {"found": False}, []
    out: list = []
    return channel.encode(_NAMESPACE[name], out), {"found": True}, out


def _seed(channel, msg, arrays):
    from llmbook.grading.runner import seed_loaded
    seed_loaded(int(msg.get("seed", 0)))
    return None, {}, []


def _call(channel, msg, arrays):
    """Call a student's function: gradients recorded, in-place changes of array/list arguments sent back."""
    target = channel.exported.get(int(msg.get("ref", -1)))
    if target is None:
        raise remote.WorkerDied("unknown object")
    leaves: list = []
    args = channel.decode(msg.get("args"), arrays, leaves)
    kwargs = channel.decode(msg.get("kwargs"), arrays, leaves)
    torch_in = [t for t in leaves if type(t).__module__.startswith("torch")]
    tf_in = [t for t in leaves if not type(t).__module__.startswith("torch")]
    for t in torch_in:
        t.requires_grad_(True)
    before = [copy.deepcopy(a) if isinstance(a, (np.ndarray, list)) else None for a in args]
    tape = None
    if tf_in:
        import tensorflow as tf
        tape = tf.GradientTape(persistent=True)
        tape.__enter__()
        tape.watch(tf_in)
    try:
        with forbidding(str(name) for name in msg.get("forbid") or ()):
            value = target(*args, **kwargs)
    finally:
        if tape is not None:
            tape.__exit__(None, None, None)
    out: list = []
    encoded = channel.encode(value, out)
    outputs = [x for x in remote._flatten(value, [])
               if type(x).__module__.startswith("torch") and getattr(x, "requires_grad", False)
               or tape is not None and type(x).__module__.startswith(("tensorflow", "keras")) and _tf_float(x)]
    gid = None
    if outputs and (torch_in or tf_in):
        gid = len(channel.grads) + 1
        channel.grads[gid] = (tape, torch_in, tf_in, outputs)
    mutated = []
    for i, (a, b) in enumerate(zip(args, before)):
        if isinstance(a, list) or isinstance(a, np.ndarray) and not np.array_equal(a, b, equal_nan=True):
            mutated.append([i, channel.encode(a, out)])
    return encoded, {"gid": gid, "mutated": mutated}, out


def _tf_float(x) -> bool:
    import tensorflow as tf
    return tf.is_tensor(x) and not isinstance(x, tf.Variable) and x.dtype.is_floating


def _grad(channel, msg, arrays):
    tape, torch_in, tf_in, outputs = channel.grads[int(msg["gid"])]
    (dy,) = channel.decode(msg.get("args"), arrays)
    out = outputs[int(msg["i"])]
    if type(out).__module__.startswith("torch"):
        import torch
        grads = torch.autograd.grad([out], torch_in, [dy.to(out.dtype)], retain_graph=True, allow_unused=True)
    else:
        import tensorflow as tf
        grads = [None if g is None else tf.convert_to_tensor(g)      # IndexedSlices (from tf.gather) -> dense
                 for g in tape.gradient(out, tf_in, output_gradients=dy)]
    arrays_out: list = []
    return channel.encode(list(grads), arrays_out), {}, arrays_out


_NAMESPACE: dict = {"__name__": "__main__", "__builtins__": __builtins__, "get_ipython": lambda: _Shell()}


def main(argv: list[str]) -> int:
    fd_in, fd_out = int(argv[0]), int(argv[1])
    # Without the sandbox, the student's code runs in a child whose parent is this keeper, not the
    # grader: a kill of os.getppid() ends the keeper only. In the sandbox the parent is the PID
    # namespace's init, which signals from inside the namespace cannot kill.
    child = os.fork() if "--keeper" in argv else 0
    if child:
        os.close(fd_in)
        os.close(fd_out)
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status) & 0xFF
    channel = remote.Channel(fd_in, fd_out, "", trusted=False)
    head = channel._read(8)
    import json
    import struct
    hello = json.loads(channel._read(struct.unpack("<I", head[4:])[0]))
    channel.token = hello["token"]
    _set_limits(hello["limits"])
    from IPython.display import display
    _NAMESPACE["display"] = display
    channel.hooks.update(cell=_cell, get=_get, seed=_seed, call=_call, grad=_grad)
    try:
        while True:
            msg, arrays = channel.recv()
            channel.serve(msg, arrays)
    except remote.WorkerDied:
        return 0


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))
