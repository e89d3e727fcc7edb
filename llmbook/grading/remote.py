"""The data-only protocol between the trusted grader and the student's worker process.

Messages travel on two dedicated pipes (never stdout): an 8-byte header (magic, JSON length), a JSON
document carrying the run's secret token, then raw `.npy` arrays read with `allow_pickle=False`.
No pickle, no code: values are numbers, strings, lists, tuples, dicts, NumPy arrays and PyTorch /
TensorFlow tensors (sent as arrays plus their dtype). Anything else — a student's function, a layer, a
grader's callback — stays in its process and is reached through a `Remote` proxy (calls, attribute
reads), in either direction. Gradients cross the pipes too: a tensor the worker computed from inputs
that require gradients comes back wired into the grader's autograd graph (PyTorch) or tape (TensorFlow),
and its backward pass asks the worker for the input gradients.
"""
from __future__ import annotations

import builtins
import io
import json
import os
import select
import struct
import sys
import time

import numpy as np

MAGIC = b"LLMB"
MAX_JSON = 64 << 20          # bytes of JSON one message may carry
MAX_ARRAYS = 1 << 30         # bytes of arrays one message may carry


class WorkerDied(BaseException):
    """The worker process ended (crash, os._exit, a kill) or broke the protocol."""


class WorkerTimeout(BaseException):
    """The worker did not answer before the deadline (an endless loop, or far too slow)."""


class RemoteError(Exception):
    """An exception raised on the other side whose type has no safe local equivalent."""


_EXCEPTIONS = {n: c for n, c in vars(builtins).items()
               if isinstance(c, type) and issubclass(c, Exception) and not n.startswith("_")}
_remote_types: dict[str, type] = {}


def rebuild_exception(info: dict) -> Exception:
    """A local exception of the same builtin type (or a RemoteError subclass of the same name)."""
    name, msg = str(info.get("type", "Exception"))[:80], str(info.get("msg", ""))[:2000]
    cls = _EXCEPTIONS.get(name)
    if cls is None:
        cls = _remote_types.setdefault(name, type(name if name.isidentifier() else "RemoteError",
                                                  (RemoteError,), {}))
    try:
        e = cls() if info.get("empty") else cls(msg)
    except Exception:  # noqa: BLE001 - constructors with other signatures
        e = RemoteError(f"{name}: {msg}")
    e.llmbook_line = str(info.get("line", ""))[:300]
    return e


def exception_info(e: BaseException) -> dict:
    """What crosses the pipe for an exception: type name, message, the innermost learner line."""
    from llmbook.grading.expect import learner_line
    return {"type": type(e).__name__, "msg": str(e)[:2000], "empty": not e.args, "line": learner_line(e)}


def _module(x) -> str:
    return type(x).__module__.split(".")[0]


class Remote:
    """A proxy for an object living in the other process: calls and attribute reads cross the pipes."""

    def __init__(self, channel: "Channel", ref: int, info: dict):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_info", info)

    @property
    def __name__(self) -> str:  # noqa: PLW3201 - mirrors a function's name
        return str(self._info.get("name") or "answer")[:80]

    def __call__(self, *args, **kwargs):
        return self.call(args, kwargs)

    def call(self, args: tuple, kwargs: dict, forbid: tuple[str, ...] = ()):
        """Call the object; the other side watches for calls to `forbid` (llmbook.grading.forbid)."""
        if not self._info.get("callable"):
            raise TypeError(f"'{self._info.get('type', 'object')}' object is not callable")
        return self._channel.request({"op": "call", "ref": self._ref, "forbid": list(forbid)}, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._channel.request({"op": "getattr", "ref": self._ref, "name": name}, (), {})

    def __repr__(self) -> str:
        return str(self._info.get("repr", "<remote object>"))[:200]

    @property
    def remote_type(self) -> str:
        return str(self._info.get("type", "object"))


class Channel:
    """One end of the pipes: send/receive messages, serve the other side's requests while waiting."""

    def __init__(self, rfd: int, wfd: int, token: str, trusted: bool):
        self.rfd, self.wfd, self.token, self.trusted = rfd, wfd, token, trusted
        self.exported: dict[int, object] = {}
        self.grads: dict[int, tuple] = {}          # worker side: gid -> (framework, tape, inputs, outputs)
        self.deadline: float | None = None         # grader side: time.monotonic() limit for answers
        self.busy = False                          # a request is in flight (interrupted => restart)
        self.hooks: dict = {}                      # op -> handler(msg, args) on the worker side
        self.last_reply: dict = {}                 # the last answer received (its extra fields)
        self.broken = False                        # a request was interrupted: the worker's state is unknown

    # --- framing -------------------------------------------------------------------------------
    def send(self, msg: dict, arrays: list[np.ndarray] = ()) -> None:
        blobs = []
        for a in arrays:
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            blobs.append(buf.getvalue())
        msg = {**msg, "token": self.token, "arrays": [len(b) for b in blobs]}
        body = json.dumps(msg).encode()
        data = MAGIC + struct.pack("<I", len(body)) + body + b"".join(blobs)
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.wfd, view)
                view = view[n:]
        except (BrokenPipeError, OSError) as e:
            raise WorkerDied(f"the other side closed the pipe ({e})") from None

    def _read(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                    raise WorkerTimeout("no answer before the deadline")
            chunk = os.read(self.rfd, min(n - got, 1 << 20))
            if not chunk:
                raise WorkerDied("the other side ended")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv(self) -> tuple[dict, list[np.ndarray]]:
        head = self._read(8)
        if head[:4] != MAGIC:
            raise WorkerDied("protocol broken: bad message header")
        (n,) = struct.unpack("<I", head[4:])
        if n > MAX_JSON:
            raise WorkerDied("protocol broken: message too large")
        try:
            msg = json.loads(self._read(n))
        except ValueError:
            raise WorkerDied("protocol broken: message is not JSON") from None
        if not isinstance(msg, dict) or msg.get("token") != self.token:
            raise WorkerDied("protocol broken: message without this run's token")
        sizes = msg.get("arrays", [])
        if not isinstance(sizes, list) or sum(int(s) for s in sizes) > MAX_ARRAYS:
            raise WorkerDied("protocol broken: arrays too large")
        arrays = []
        for s in sizes:
            try:
                arrays.append(np.load(io.BytesIO(self._read(int(s))), allow_pickle=False))
            except ValueError:
                raise WorkerDied("protocol broken: not a plain array") from None
        return msg, arrays

    # --- values --------------------------------------------------------------------------------
    def encode(self, x, arrays: list, depth: int = 0):
        """A JSON-able description of `x`; arrays are appended to `arrays`."""
        if depth > 50:
            raise ValueError("value nested too deeply to send")
        if isinstance(x, np.generic) and not isinstance(x, np.object_):   # before float: np.float64 is one
            arrays.append(np.asarray(x))
            return {"$": "npscalar", "i": len(arrays) - 1}
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if isinstance(x, float):
            return {"$": "float", "v": float.__repr__(x)}
        if x is Ellipsis:
            return {"$": "ellipsis"}
        if isinstance(x, np.ndarray) and x.dtype != object:
            arrays.append(np.ascontiguousarray(x))
            return {"$": "nd", "i": len(arrays) - 1}
        mod = _module(x)
        if mod == "torch":
            import torch
            if isinstance(x, torch.Tensor):
                dtype = str(x.dtype).replace("torch.", "")
                value = x.detach().cpu()
                value = value.float() if dtype == "bfloat16" else value
                arrays.append(value.numpy().copy())
                return {"$": "torch", "i": len(arrays) - 1, "dtype": dtype, "rg": bool(x.requires_grad)}
            if isinstance(x, torch.dtype):
                return {"$": "torchdtype", "v": str(x).replace("torch.", "")}
        if mod in ("tensorflow", "keras") and "tensorflow" in sys.modules:
            import tensorflow as tf
            if isinstance(x, tf.Variable) or tf.is_tensor(x):
                try:
                    value = np.asarray(x.numpy())
                except Exception:  # noqa: BLE001 - symbolic tensors stay remote
                    return self._export(x)
                arrays.append(value)
                return {"$": "tfvar" if isinstance(x, tf.Variable) else "tf", "i": len(arrays) - 1,
                        "dtype": x.dtype.name}
            if isinstance(x, tf.DType):
                return {"$": "tfdtype", "v": x.name}
        if isinstance(x, (list, tuple)) and type(x) in (list, tuple) or mod == "torch" and isinstance(x, tuple):
            kind = "list" if isinstance(x, list) else "tuple"
            return {"$": kind, "v": [self.encode(v, arrays, depth + 1) for v in x]}
        if type(x) is dict:
            return {"$": "dict", "v": [[self.encode(k, arrays, depth + 1), self.encode(v, arrays, depth + 1)]
                                       for k, v in x.items()]}
        if isinstance(x, Remote) and x._channel is self:
            return {"$": "back", "id": x._ref}
        return self._export(x)

    def _export(self, x) -> dict:
        ref = id(x)
        self.exported[ref] = x
        try:
            text = repr(x)
        except Exception:  # noqa: BLE001 - a learner's __repr__ may raise
            text = f"<{type(x).__name__} object>"
        return {"$": "ref", "id": ref, "type": type(x).__name__, "repr": text[:200], "callable": callable(x),
                "name": str(getattr(x, "__name__", "") or "")[:80] if not isinstance(x, Remote) else x.__name__}

    def decode(self, d, arrays: list, grads: list | None = None, depth: int = 0):
        """The value `d` describes; tensors that require gradients are collected in `grads`."""
        if depth > 60:
            raise WorkerDied("protocol broken: value nested too deeply")
        if d is None or isinstance(d, (bool, int, str)):
            return d
        if not isinstance(d, dict):
            raise WorkerDied("protocol broken: unknown value")
        kind = d.get("$")
        if kind == "float":
            return float(d["v"])
        if kind == "ellipsis":
            return Ellipsis
        if kind in ("nd", "npscalar", "torch", "tf", "tfvar"):
            arr = arrays[int(d["i"])]
            if kind == "nd":
                return arr
            if kind == "npscalar":
                return arr[()]
            if kind == "torch":
                import torch
                dtype = getattr(torch, str(d["dtype"]), None)
                if not isinstance(dtype, torch.dtype):
                    raise WorkerDied("protocol broken: unknown dtype")
                t = torch.from_numpy(np.array(arr)).to(dtype)
                if d.get("rg") and grads is not None:
                    grads.append(t)
                elif d.get("rg") and t.is_floating_point():
                    t.requires_grad_(True)
                return t
            import tensorflow as tf
            dtype = getattr(tf, str(d["dtype"]), None)
            if not isinstance(dtype, tf.DType):
                raise WorkerDied("protocol broken: unknown dtype")
            t = tf.constant(arr, dtype=dtype)
            if kind == "tfvar":
                return tf.Variable(t)
            if grads is not None and t.dtype.is_floating:
                grads.append(t)
            return t
        if kind == "torchdtype":
            import torch
            value = getattr(torch, str(d["v"]), None)
            if not isinstance(value, torch.dtype):
                raise WorkerDied("protocol broken: unknown dtype")
            return value
        if kind == "tfdtype":
            import tensorflow as tf
            value = getattr(tf, str(d["v"]), None)
            if not isinstance(value, tf.DType):
                raise WorkerDied("protocol broken: unknown dtype")
            return value
        if kind in ("list", "tuple"):
            items = [self.decode(v, arrays, grads, depth + 1) for v in d["v"]]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            out = {}
            for k, v in d["v"]:
                key = self.decode(k, arrays, grads, depth + 1)
                try:
                    out[key] = self.decode(v, arrays, grads, depth + 1)
                except TypeError:
                    raise WorkerDied("protocol broken: unhashable key") from None
            return out
        if kind == "ref":
            return Remote(self, int(d["id"]), {k: d.get(k) for k in ("type", "repr", "callable", "name")})
        if kind == "back":
            if int(d["id"]) not in self.exported:
                raise WorkerDied("protocol broken: unknown object")
            return self.exported[int(d["id"])]
        raise WorkerDied(f"protocol broken: unknown value kind {kind!r}")

    # --- requests ------------------------------------------------------------------------------
    def request(self, msg: dict, args: tuple, kwargs: dict):
        """Send a request (call/getattr/...) and wait for its answer, serving nested requests meanwhile."""
        arrays: list = []
        inputs: list = []
        payload = {"args": self.encode(tuple(args), arrays), "kwargs": self.encode(dict(kwargs), arrays)}
        if self.trusted:
            inputs = _grad_inputs(args, kwargs)
            payload["grad_inputs"] = len(inputs)
        was_busy, self.busy = self.busy, True
        self.send({**msg, **payload}, arrays)
        try:
            reply, reply_arrays = self.serve_until_reply()
        except BaseException:
            self.broken = True
            raise
        finally:
            self.busy = was_busy
        self.last_reply = reply
        if reply["op"] == "raise":
            raise rebuild_exception(reply.get("error", {}))
        grads: list = [] if self.trusted else None
        value = self.decode(reply.get("value"), reply_arrays, grads)
        if self.trusted:
            self._write_back(args, reply.get("mutated", []), reply_arrays)
            if grads:
                value = self._bridge(value, grads, inputs, reply.get("gid"))
        return value

    def serve_until_reply(self) -> tuple[dict, list]:
        while True:
            msg, arrays = self.recv()
            op = msg.get("op")
            if op in ("return", "raise"):
                return msg, arrays
            self.serve(msg, arrays)

    def serve(self, msg: dict, arrays: list) -> None:
        """Answer one request from the other side."""
        op = msg.get("op")
        try:
            if op in self.hooks:
                value, extra, out_arrays = self.hooks[op](self, msg, arrays)
                self.send({"op": "return", "value": value, **extra}, out_arrays)
                return
            if op not in ("call", "getattr"):
                raise WorkerDied(f"protocol broken: unknown request {op!r}")
            target = self.exported.get(int(msg.get("ref", -1)))
            if target is None:
                raise WorkerDied("protocol broken: unknown object")
            args = self.decode(msg.get("args"), arrays)
            kwargs = self.decode(msg.get("kwargs"), arrays)
            if op == "getattr":
                name = str(msg.get("name", ""))
                if self.trusted or name.startswith("_"):
                    raise AttributeError(f"{name!r} is not readable across the sandbox")
                value = getattr(target, name)
            else:
                value = target(*args, **kwargs)
        except (WorkerDied, WorkerTimeout):
            raise
        except BaseException as e:  # noqa: BLE001 - the other side gets the exception as data
            if self.trusted and not isinstance(e, Exception):
                raise
            self.send({"op": "raise", "error": exception_info(e)})
            return
        out: list = []
        self.send({"op": "return", "value": self.encode(value, out)}, out)

    # --- grader side: in-place changes and gradients -------------------------------------------
    def _write_back(self, args: tuple, mutated: list, arrays: list) -> None:
        for item in mutated if isinstance(mutated, list) else []:
            try:
                i, new = int(item[0]), self.decode(item[1], arrays)
                old = args[i]
                if isinstance(old, np.ndarray) and isinstance(new, np.ndarray) and old.shape == new.shape:
                    np.copyto(old, new, casting="unsafe")
                elif isinstance(old, list) and isinstance(new, list):
                    old[:] = new
                elif _module(old) == "torch" and _module(new) == "torch" and old.shape == new.shape:
                    import torch
                    with torch.no_grad():
                        old.copy_(new)
            except (IndexError, TypeError, ValueError, RuntimeError):
                continue

    def _bridge(self, value, grads: list, inputs: list, gid):
        """Replace each tensor in `grads` (inside `value`) by one wired to `inputs` through the worker."""
        swap = {}
        for i, t in enumerate(grads):
            if _module(t) == "torch":
                swap[id(t)] = _torch_bridge(self, gid, i, t, [x for x in inputs if _module(x) == "torch"])
            else:
                swap[id(t)] = _tf_bridge(self, gid, i, t, [x for x in inputs if _module(x) != "torch"])
        return _replace(value, swap)

    def input_grads(self, gid, i: int, dy) -> list:
        """The worker's gradients of its inputs for output `i` of call `gid`, given upstream `dy`."""
        return self.request({"op": "grad", "gid": gid, "i": i}, (dy,), {})


def _replace(value, swap: dict):
    if id(value) in swap:
        return swap[id(value)]
    if type(value) in (list, tuple):
        return type(value)(_replace(v, swap) for v in value)
    if type(value) is dict:
        return {k: _replace(v, swap) for k, v in value.items()}
    return value


def _flatten(x, out: list, depth: int = 0) -> list:
    if depth > 50:
        return out
    if type(x) in (list, tuple):
        for v in x:
            _flatten(v, out, depth + 1)
    elif type(x) is dict:
        for k, v in x.items():
            _flatten(k, out, depth + 1)
            _flatten(v, out, depth + 1)
    else:
        out.append(x)
    return out


def _grad_inputs(args, kwargs) -> list:
    """The tensors among the arguments that gradients may flow to, in the order encode() visits them."""
    found = []
    for x in _flatten((tuple(args), dict(kwargs)), []):
        mod = _module(x)
        if mod == "torch":
            import torch
            if isinstance(x, torch.Tensor) and x.requires_grad:
                found.append(x)
        elif mod in ("tensorflow", "keras") and "tensorflow" in sys.modules:
            import tensorflow as tf
            if tf.is_tensor(x) and not isinstance(x, tf.Variable) and x.dtype.is_floating:
                found.append(x)
    return found


def _torch_bridge(channel: Channel, gid, i: int, value, inputs: list):
    import torch

    class Bridge(torch.autograd.Function):
        @staticmethod
        def forward(ctx, out, *xs):
            return out.clone()

        @staticmethod
        def backward(ctx, dy):
            got = channel.input_grads(gid, i, dy)
            got = list(got) if isinstance(got, (list, tuple)) else []
            got = [g if _module(g) == "torch" else None for g in got] + [None] * len(inputs)
            return (None, *[g.to(x.dtype) if g is not None and g.shape == x.shape else None
                            for g, x in zip(got, inputs)])

    if not inputs:
        return value.requires_grad_(True) if value.is_floating_point() else value
    return Bridge.apply(value, *inputs)


def _tf_bridge(channel: Channel, gid, i: int, value, inputs: list):
    import tensorflow as tf
    if not inputs:
        return value

    @tf.custom_gradient
    def bridged(*xs):
        def grad(dy):
            got = channel.input_grads(gid, i, dy)
            got = list(got) if isinstance(got, (list, tuple)) else []
            got += [None] * len(inputs)
            return [tf.convert_to_tensor(g, dtype=x.dtype) if g is not None and tf.is_tensor(g)
                    and tuple(g.shape) == tuple(x.shape) else None for g, x in zip(got, xs)]
        return tf.identity(value), grad

    return bridged(*inputs)
