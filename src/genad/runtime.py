"""Where and how networks run: device choice, CPU threads, batched inference.

Shared by the training loop (validation passes) and the detector (scoring). Nothing here
knows about data formats or models beyond ``torch.nn.Module``.
"""

from __future__ import annotations

import os
import threading
from contextlib import nullcontext
from typing import Any

import torch

__all__ = [
    "resolve_device", "cpu_threads", "predict_in_batches", "flops_per_sample",
    "clear_aligned_cache",
    "SCORE_BATCH", "SCORE_BUCKETS", "ALIGN_COLUMNS",
]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to torch.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available; use 'auto'")
    return dev


#: rows per inference batch; every batch is padded to one of SCORE_BUCKETS rows
SCORE_BATCH = 4096
#: padded batch sizes. Matrix kernels choose their blocking (and so the order of their
#: float32 sums) from the batch shape: a row scored in a batch of 1 or 2 rows can differ
#: in the last bit from the same row in a batch of 4,096. From 4 rows up the kernels of
#: every model preset were checked to give bit-identical rows (benchmarks/README.md), so
#: small calls pad to 16 or 256 rows instead of 4,096 (a single row: ~0.1 ms, not 4 ms).
SCORE_BUCKETS = (16, 256, SCORE_BATCH)

#: matrix products inside scoring compute a multiple of this many output columns
ALIGN_COLUMNS = 16


def _pad_columns(m: torch.Tensor, pad: int) -> torch.Tensor:
    return torch.cat([m, m.new_zeros(*m.shape[:-1], pad)], dim=-1)


def _aligned_weights(
    w: torch.Tensor, b: torch.Tensor | None, pad: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``w`` with ``pad`` zero rows and ``b`` with ``pad`` zeros, cached on ``w``.

    The cache key holds the storage and the in-place version counter of both tensors, so
    ``load_state_dict``, a move to another device or any in-place edit invalidates it.
    Fused optimisers update parameters without bumping the version counter: the
    training loop calls :func:`clear_aligned_cache` before and after training, and code
    that steps an optimiser on a fitted model itself must do the same.
    """
    key = (w.data_ptr(), w._version, w.device,
           None if b is None else (b.data_ptr(), b._version))
    cached = getattr(w, "_genad_aligned", None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    wp = torch.cat([w, w.new_zeros(pad, w.shape[1])])
    bp = None if b is None else torch.cat([b, b.new_zeros(pad)])
    w._genad_aligned = (key, wp, bp)
    return wp, bp


def clear_aligned_cache(module: torch.nn.Module) -> None:
    """Forget the padded copies of ``module``'s weights (see :func:`_aligned_weights`)."""
    for p in module.parameters():
        p.__dict__.pop("_genad_aligned", None)


class _AlignedProducts(torch.overrides.TorchFunctionMode):
    """Zero-pads the output width of ``linear``, ``addmm`` and 2-D ``matmul``/``mm`` to a
    multiple of :data:`ALIGN_COLUMNS`, and drops the padding from the result.

    With some narrow outputs (7 to 10 columns here, e.g. an AE's bottleneck on 30
    features) the CPU kernels compute a row differently depending on its position in the
    batch: the same row scored alone and inside a table differed in the last float32 bit
    for half of the rows. Padded widths take kernels without that dependence; the extra
    columns are zeros, so the kept columns are exact dot products as before. The padded
    weights of ``linear`` layers are built once and cached (see :func:`_aligned_weights`).
    """

    _MATMULS = (torch.matmul, torch.Tensor.__matmul__, torch.mm)

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        if not kwargs:
            if func is torch.nn.functional.linear and args[0].dim() == 2:
                w = args[1]
                n, pad = w.shape[0], -w.shape[0] % ALIGN_COLUMNS
                if pad:
                    wp, bp = _aligned_weights(w, args[2] if len(args) > 2 else None, pad)
                    return func(args[0], wp, bp)[:, :n]
            elif func in self._MATMULS and args[0].dim() == 2 and args[1].dim() == 2:
                n, pad = args[1].shape[1], -args[1].shape[1] % ALIGN_COLUMNS
                if pad:
                    return func(args[0], _pad_columns(args[1], pad))[:, :n]
            elif func is torch.addmm and len(args) == 3 and args[2].dim() == 2:
                c, a, m = args
                n, pad = m.shape[1], -m.shape[1] % ALIGN_COLUMNS
                if pad:
                    c = _pad_columns(c, pad) if c.dim() >= 1 and c.shape[-1] == n else c
                    return func(c, a, _pad_columns(m, pad))[:, :n]
        return func(*args, **(kwargs or {}))


def _padded_size(n: int, batch_size: int) -> int:
    """The smallest bucket holding ``n`` rows (buckets above ``batch_size`` are unused)."""
    for size in SCORE_BUCKETS:
        if n <= size <= batch_size:
            return size
    return batch_size


def predict_in_batches(
    fn: Any, x: torch.Tensor, device: torch.device, batch_size: int = SCORE_BATCH,
    *, fixed_shape: bool = True, workers: int = 1,
) -> Any:
    """Apply a row-wise ``fn`` to ``x`` in batches on ``device`` (inference mode), on CPU.

    With ``fixed_shape`` (default) each batch is zero-padded to a fixed size: full
    batches have ``batch_size`` rows, a shorter last batch is padded to the smallest of
    :data:`SCORE_BUCKETS` that holds it. Matrix kernels choose their blocking from the
    batch shape, so the same row scored alone or among others could differ in the last
    float32 bit; with a few fixed batch shapes, checked to agree bit for bit, scores are
    identical whether rows come in one batch or one by one. For the same reason the
    matrix products get aligned output widths (:class:`_AlignedProducts`): without them
    a row's last bit could depend on its position in the batch.

    ``fn`` may return a tuple of tensors (a model's ``infer``: scores and maps); the
    result is then the tuple of their concatenations.

    With ``workers > 1`` on the CPU, batches run side by side in that many threads
    (torch releases the interpreter lock inside its kernels). Each batch is computed
    exactly as it would be alone, so the result does not depend on ``workers``; run it
    inside :class:`cpu_threads`, so that each worker's kernels use one thread.

    Examples
    --------
    >>> out = predict_in_batches(lambda b: b.sum(dim=1), torch.ones(5, 3), torch.device("cpu"))
    >>> out.tolist()
    [3.0, 3.0, 3.0, 3.0, 3.0]
    """
    aligned = _AlignedProducts if fixed_shape else nullcontext

    def one(start: int) -> torch.Tensor:
        xb = x[start : start + batch_size]
        n = xb.shape[0]
        if fixed_shape:
            size = _padded_size(n, batch_size)
            if n < size:
                xb = torch.cat([xb, xb.new_zeros((size - n, *xb.shape[1:]))])
        # inference mode and the function mode are per thread: entered for each batch
        with torch.inference_mode(), aligned():
            out = fn(xb.to(device, non_blocking=True))
            if isinstance(out, tuple):
                return tuple((o[:n] if fixed_shape else o).float().cpu() for o in out)
            return (out[:n] if fixed_shape else out).float().cpu()

    starts = range(0, x.shape[0], batch_size)
    if workers > 1 and device.type == "cpu" and len(starts) > 1:
        outs = list(_worker_pool(workers).map(one, starts))
    else:
        outs = [one(start) for start in starts]
    if len(outs) == 1:
        return outs[0]
    if outs and isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
    return torch.cat(outs) if outs else torch.empty(0)


_POOL: Any = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _worker_pool(workers: int) -> Any:
    """The scoring threads, kept between calls: a thread's first matrix product pays for
    the BLAS library's per-thread set-up (milliseconds), so a pool per call would pay it
    on every call."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE != workers:
            from concurrent.futures import ThreadPoolExecutor

            if _POOL is not None:
                _POOL.shutdown(wait=False)  # tasks already submitted still run
            _POOL = ThreadPoolExecutor(workers, thread_name_prefix="genad-score")
            _POOL_SIZE = workers
        return _POOL


def _forget_pool() -> None:  # a forked child has none of its parent's threads
    global _POOL, _POOL_SIZE
    _POOL, _POOL_SIZE = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def flops_per_sample(model: torch.nn.Module, sample_shape: tuple[int, ...]) -> float:
    """Floating-point operations of one forward pass of ``model`` on one sample.

    Counted once on a zero input of ``(1, *sample_shape)`` with torch's FLOP formulas
    (``torch.utils.flop_counter.flop_registry``: matrix products and convolutions;
    elementwise work is not counted). A genad model is measured through its scoring pass
    (``model.score``), any other module through its forward. The count runs in a
    dispatch mode of this thread only: ``FlopCounterMode`` also installs process-wide
    module hooks, which broke ``torch.autograd.grad`` (a gradient penalty) in fits running
    in other threads at the same time.

    Examples
    --------
    >>> flops_per_sample(torch.nn.Linear(30, 10), (30,))
    600.0
    """
    device = next(iter(model.parameters()), torch.empty(0)).device
    x = torch.zeros((1, *sample_shape), device=device)
    counter = _FlopCount()
    forward = getattr(model, "score", model)  # a genad model's scoring pass
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), counter:
            forward(x)
    finally:
        model.train(was_training)
    return float(counter.total)


def _flop_count_mode() -> type:
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class FlopCount(TorchDispatchMode):
        """Adds up the FLOPs of the operators torch has formulas for (this thread only)."""

        def __init__(self) -> None:
            super().__init__()
            self.total = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            formula = flop_registry.get(func._overloadpacket)
            if formula is None:  # a composite such as linear: count what it is made of
                with self:
                    out = func.decompose(*args, **kwargs)
                if out is not NotImplemented:
                    return out
                return func(*args, **kwargs)
            out = func(*args, **kwargs)
            self.total += formula(*args, **kwargs, out_val=out)
            return out

    return FlopCount


def _FlopCount() -> Any:  # noqa: N802 - builds the mode class on first use
    global _FLOP_COUNT
    if _FLOP_COUNT is None:
        _FLOP_COUNT = _flop_count_mode()
    return _FLOP_COUNT()


_FLOP_COUNT: Any = None


#: below this many multiply-add FLOPs per sample a model scores on one CPU thread
ONE_THREAD_FLOPS = 4e6


class cpu_threads:
    """Run light models on one CPU thread per worker, heavier ones on torch's threads.

    For narrow networks the OpenMP hand-off costs more than it saves, and under
    contention (other processes on the cores) it costs one to two orders of magnitude.
    The rule is keyed on compute per sample (:func:`flops_per_sample`): under
    :data:`ONE_THREAD_FLOPS` (an MLP of about 2 million parameters) one thread is used;
    a convolutional net with few parameters but much compute per image keeps every
    thread. Without ``flops`` the parameter count stands in for it (2 FLOPs each).
    Even a 16-row product runs on every thread when allowed to, and waits for a busy
    core, so the rule holds for small calls too; switching costs about a microsecond.

    Inside the block, :attr:`workers` is how many batches
    :func:`predict_in_batches` may run side by side: for a light model, torch's thread
    count on entry (each worker's kernels then use one thread, and a busy core slows
    only its own batches); 1 for a heavy model, whose kernels use every thread.

    Parameters
    ----------
    model : torch.nn.Module
    device : torch.device
        Nothing changes off the CPU.
    flops : float, optional
        FLOPs of one sample's forward pass.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device,
                 flops: float | None = None) -> None:
        if flops is None:
            flops = 2.0 * sum(p.numel() for p in model.parameters())
        self.threads = 1 if device.type == "cpu" and flops < ONE_THREAD_FLOPS else None
        self.saved: int | None = None
        self.workers = 1

    def __enter__(self) -> cpu_threads:
        if self.threads is not None:
            current = torch.get_num_threads()
            self.workers = max(1, current)
            if current != self.threads:
                self.saved = current
                torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            torch.set_num_threads(self.saved)
            self.saved = None
