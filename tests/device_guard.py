"""A pretend accelerator for CPU-only machines: catches code that would mix devices on a real GPU.

`PretendGPU()` is a TorchFunctionMode. Tensors it marks as "on the accelerator" report
`.device == torch.device("meta")` (a device that is not the CPU, so code that follows a model's
device passes it along) while their values stay on the CPU, so every computation still runs and
gives the CPU's numbers. The marks spread through every torch function: a result is on the
accelerator when any input is. Creating a tensor with `device=<the accelerator>`, `.to(...)` it, or
moving a model there with `.to(...)` marks it; `.cpu()` / `.to("cpu")` unmarks.

What would fail on CUDA fails here with `DeviceMixError`:
- an operation that mixes accelerator tensors with CPU tensors of one or more dimensions (CUDA
  accepts only 0-dim CPU tensors, as scalars, and CPU index tensors);
- `.numpy()` of an accelerator tensor (CUDA needs `.cpu()` first).

`llmbook.torch.device()` returns the accelerator while the mode is active, as it would on a GPU.
"""
from __future__ import annotations

import weakref
from contextlib import ExitStack
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode

ACCEL = torch.device("meta")          # what an accelerator tensor reports as its device
CPU = torch.device("cpu")


class DeviceMixError(AssertionError):
    """Code that would raise (or silently copy) on a real GPU."""


def _is_accel(device) -> bool:
    return device is not None and torch.device(device).type == "meta"


def _tensors(obj):
    """Every tensor inside args/kwargs (lists, tuples, dicts)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _tensors(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _tensors(x)


_NO_CHECK = {"__getitem__", "copy_", "to", "cpu", "cuda", "__get__", "__set__", "detach", "numpy",
             "requires_grad_", "__setstate__", "__reduce_ex__", "__deepcopy__", "_is_view",
             "is_floating_point", "dim", "size", "__len__", "__format__", "__repr__", "data_ptr",
             "element_size", "numel", "stride", "storage_offset", "untyped_storage", "is_contiguous"}


class PretendGPU(TorchFunctionMode):
    """Marks tensors as living on a pretend accelerator and fails on device mixing (see the module doc)."""

    def __init__(self):
        super().__init__()
        self._marked: dict[int, weakref.ref] = {}
        self._stack = ExitStack()
        self.checked_ops = 0           # how many operations had an accelerator input (the guard saw real work)

    # -- marks ----------------------------------------------------------------------------------------
    def on_accel(self, t: torch.Tensor) -> bool:
        ref = self._marked.get(id(t))
        return ref is not None and ref() is t

    def _mark(self, out):
        for t in _tensors(out):
            if not self.on_accel(t):
                self._marked[id(t)] = weakref.ref(t, lambda _, k=id(t): self._marked.pop(k, None))
        return out

    def _unmark(self, t: torch.Tensor) -> None:
        self._marked.pop(id(t), None)

    # -- the mode -------------------------------------------------------------------------------------
    def __enter__(self):
        import llmbook.torch
        import llmbook.torch.train
        self._stack.enter_context(mock.patch.object(llmbook.torch, "device", lambda: ACCEL))
        self._stack.enter_context(mock.patch.object(llmbook.torch.train, "best_device", lambda: ACCEL))
        import llmbook.torch.checkpoint
        self._stack.enter_context(mock.patch.object(llmbook.torch.checkpoint, "best_device", lambda: ACCEL))
        return super().__enter__()

    def __exit__(self, *exc):
        out = super().__exit__(*exc)
        self._stack.close()
        return out

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", str(func))
        owner = args[0] if args and isinstance(args[0], torch.Tensor) else None
        # properties: .device reports the accelerator; .grad of an accelerator tensor is on it too
        if name == "__get__" and owner is not None:
            out = func(*args, **kwargs)
            prop = getattr(func, "__self__", None)
            prop_name = getattr(prop, "__name__", "")
            if prop_name == "device" and self.on_accel(owner):
                return ACCEL
            if prop_name in ("grad", "data", "T", "mT", "real") and self.on_accel(owner) and out is not None:
                self._mark(out)
            return out
        # moving: .to(device) / .cpu() / .cuda()
        if name in ("to", "cpu", "cuda") and owner is not None:
            target = None
            if name == "cpu":
                target = CPU
            elif name == "cuda":
                target = ACCEL
            else:
                for a in list(args[1:]) + [kwargs.get("device")]:
                    if isinstance(a, (str, torch.device)):
                        target = torch.device(a)
                    elif isinstance(a, torch.Tensor):
                        target = ACCEL if self.on_accel(a) else CPU
                if _is_accel(target):
                    args = tuple(CPU if isinstance(a, (str, torch.device)) and _is_accel(a) else a for a in args)
                    if "device" in kwargs:
                        kwargs["device"] = CPU
            if name == "cuda":
                out = owner.to(CPU)
            else:
                out = func(*args, **kwargs)
            if target is None:
                return self._mark(out) if self.on_accel(owner) else out
            if _is_accel(target):
                return self._mark(out)
            if out is owner:                        # already on the CPU: to("cpu") returned the same tensor
                if self.on_accel(owner):
                    out = owner.detach().clone().requires_grad_(owner.requires_grad) if owner.is_leaf \
                        else owner.clone()
            self._unmark(out)
            return out
        if name == "numpy" and owner is not None and self.on_accel(owner):
            raise DeviceMixError("`.numpy()` of a tensor on the accelerator: CUDA needs `.cpu()` first "
                                 "(e.g. `x.detach().cpu().numpy()`)")
        # factories: device=<accelerator>
        make_accel = _is_accel(kwargs.get("device"))
        if make_accel:
            kwargs["device"] = CPU
        tensors = [t for t in _tensors((args, kwargs))]
        accel = [t for t in tensors if self.on_accel(t)]
        if accel and name not in _NO_CHECK:
            self.checked_ops += 1
            host = [t for t in tensors if not self.on_accel(t) and t.dim() > 0]
            if name == "__setitem__":
                host = [t for t in _tensors(args[2:]) if not self.on_accel(t) and t.dim() > 0]
            if host:
                raise DeviceMixError(
                    f"{name}() mixes tensors on the accelerator with CPU tensors of shapes "
                    f"{[tuple(t.shape) for t in host]}: on a GPU this raises 'Expected all tensors to be on "
                    "the same device'. Create inputs on the model's device "
                    "(`torch.as_tensor(x, device=next(model.parameters()).device)`).")
        out = func(*args, **kwargs)
        if make_accel or accel:
            if name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "size", "dim",
                        "numel", "__len__"):
                return out
            self._mark(out)
        return out
