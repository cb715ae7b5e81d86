"""The one training loop every model uses.

Models define the objective (``loss``) and, for GANs, their own ``train_step``; this
loop owns batching, shuffling, early stopping on held-out normals, device placement,
mixed precision, divergence checks and the progress bar.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from genad.errors import TrainingDivergedError
from genad.models.base import GenerativeModel

__all__ = [
    "TrainConfig", "train_model", "resolve_device", "predict_in_batches", "auto_epochs",
    "cpu_threads", "hit_epoch_cap",
]


@dataclass
class TrainConfig:
    """Settings of :func:`train_model` (the detector fills them from its parameters)."""

    epochs: int = 50
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    min_delta: float = 1e-4
    device: str = "cpu"
    verbose: int = 1
    random_state: int | None = None
    description: str = "training"
    #: CPU RNG state that the training noise (dropout, corruption, sampling) starts from;
    #: default: a generator seeded with ``random_state``. The detector passes the global
    #: RNG's state right after seeded initialisation, so noise follows the stream it
    #: always did while no longer touching the RNG other threads share.
    noise_state: torch.Tensor | None = None


class _EpochLines:
    """``verbose >= 2``: one plain progress line on stderr every few epochs (for logs).

    Lines come every ``max(1, epochs // 10)`` epochs and at the last epoch, e.g.
    ``epoch 10/50  loss 0.123  val 0.130  (1.2 s)``.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.every = max(1, total // 10)
        self.t0 = time.perf_counter()

    def update(self, epoch: int, train_loss: float, val_loss: float, last: bool) -> None:
        done = epoch + 1
        if done % self.every and not last:
            return
        sys.stderr.write(f"epoch {done}/{self.total}  loss {train_loss:.4g}  val {val_loss:.4g}"
                         f"  ({time.perf_counter() - self.t0:.1f} s)\n")
        sys.stderr.flush()


def hit_epoch_cap(history: dict[str, Any], epochs: int, patience: int) -> bool:
    """Whether training ran out of epochs while the validation loss was still improving.

    True when all ``epochs`` ran (no early stop) and the best validation loss came in the
    last ``max(1, min(patience, epochs) // 2)`` epochs. Without an early stop the last
    improvement is always within ``patience`` epochs, so that alone says little; an
    improvement in the latter half of the patience window means the loss had not
    levelled off, and more epochs would likely give a better model.

    Examples
    --------
    >>> hit_epoch_cap({"val_loss": [3.0, 2.0, 1.0], "best_epoch": 2, "stopped_early": False},
    ...               epochs=3, patience=10)
    True
    >>> hit_epoch_cap({"val_loss": [3.0, 1.0, 2.0, 2.0, 2.0, 2.0], "best_epoch": 1,
    ...                "stopped_early": False}, epochs=6, patience=10)
    False
    """
    ran = len(history["val_loss"])
    if history.get("stopped_early") or ran < epochs:
        return False
    return bool(history["best_epoch"] >= ran - max(1, min(patience, ran) // 2))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to torch."""
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


def auto_epochs(n_rows: int, batch_size: int) -> int:
    """Epochs giving at least 4,000 optimisation steps: between 50 and 500 epochs."""
    steps = max(1, math.ceil(n_rows / max(1, batch_size)))
    return int(min(500, max(50, math.ceil(4000 / steps))))


def _progress(enabled: bool, total: int, description: str) -> Any:
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        transient=False,
    )
    prog.start()
    prog.add_task(description, total=total, info="")
    return prog


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


class _AlignedProducts(torch.overrides.TorchFunctionMode):
    """Zero-pads the output width of ``linear``, ``addmm`` and 2-D ``matmul``/``mm`` to a
    multiple of :data:`ALIGN_COLUMNS`, and drops the padding from the result.

    With some narrow outputs (7 to 10 columns here, e.g. an AE's bottleneck on 30
    features) the CPU kernels compute a row differently depending on its position in the
    batch: the same row scored alone and inside a table differed in the last float32 bit
    for half of the rows. Padded widths take kernels without that dependence; the extra
    columns are zeros, so the kept columns are exact dot products as before.
    """

    _MATMULS = (torch.matmul, torch.Tensor.__matmul__, torch.mm)

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        if not kwargs:
            if func is torch.nn.functional.linear and args[0].dim() == 2:
                w = args[1]
                n, pad = w.shape[0], -w.shape[0] % ALIGN_COLUMNS
                if pad:
                    b = args[2] if len(args) > 2 else None
                    w = torch.cat([w, w.new_zeros(pad, w.shape[1])])
                    b = None if b is None else torch.cat([b, b.new_zeros(pad)])
                    return func(args[0], w, b)[:, :n]
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
    *, fixed_shape: bool = True,
) -> torch.Tensor:
    """Apply a row-wise ``fn`` to ``x`` in batches on ``device`` (inference mode), on CPU.

    With ``fixed_shape`` (default) each batch is zero-padded to a fixed size: full
    batches have ``batch_size`` rows, a shorter last batch is padded to the smallest of
    :data:`SCORE_BUCKETS` that holds it. Matrix kernels choose their blocking from the
    batch shape, so the same row scored alone or among others could differ in the last
    float32 bit; with a few fixed batch shapes, checked to agree bit for bit, scores are
    identical whether rows come in one batch or one by one. For the same reason the
    matrix products get aligned output widths (:class:`_AlignedProducts`): without them
    a row's last bit could depend on its position in the batch.
    """
    outs = []
    with torch.inference_mode(), (_AlignedProducts() if fixed_shape else nullcontext()):
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size]
            n = xb.shape[0]
            if fixed_shape:
                size = _padded_size(n, batch_size)
                if n < size:
                    xb = torch.cat([xb, xb.new_zeros((size - n, *xb.shape[1:]))])
            out = fn(xb.to(device, non_blocking=True))
            outs.append((out[:n] if fixed_shape else out).float().cpu())
    if len(outs) == 1:
        return outs[0]
    return torch.cat(outs) if outs else torch.empty(0)


class cpu_threads:
    """Run small models on one CPU thread: for narrow networks the OpenMP hand-off costs
    more than it saves, and under contention (other processes on the cores) it costs
    one to two orders of magnitude."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        n_params = sum(p.numel() for p in model.parameters())
        self.threads = 1 if device.type == "cpu" and n_params < 2_000_000 else None

    def __enter__(self) -> None:
        self.saved = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        if self.threads is not None:
            torch.set_num_threads(self.saved)


def _divergence(epoch: int, what: str, value: float) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"training diverged at epoch {epoch + 1}: the {what} is {value}. Try a lower "
        "learning_rate (e.g. 10x smaller), scaling='robust', or check the training data "
        "for extreme values"
    )


def train_model(
    model: GenerativeModel,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    config: TrainConfig,
) -> dict[str, Any]:
    """Train ``model`` on ``x_train`` with early stopping on ``x_val``.

    The best weights (lowest validation loss) are restored at the end.

    Returns
    -------
    dict
        History: ``train_loss``, ``val_loss``, ``epoch_seconds`` (lists, one per epoch),
        ``best_epoch`` (0-based), ``stopped_early``, ``device``, ``hit_epoch_cap`` (every
        epoch ran and the validation loss was still improving: see :func:`hit_epoch_cap`).

    ``config.verbose``: 0 is silent, 1 shows a progress bar when stderr is a terminal,
    2 (or more) prints one line every few epochs on stderr, terminal or not (for logs).

    Raises
    ------
    TrainingDivergedError
        On a NaN/inf loss, a loss that explodes, or a degenerate model
        (:meth:`GenerativeModel.check_health`).
    """
    device = resolve_device(config.device)
    model.to(device)
    seed = 0 if config.random_state is None else int(config.random_state)
    gen = torch.Generator()
    gen.manual_seed(seed)
    noise = torch.Generator(device=device)
    if device.type == "cpu" and config.noise_state is not None:
        noise.set_state(config.noise_state)
    else:
        noise.manual_seed(seed)
    model.set_generator(noise)
    model.setup(x_train.to(device))
    optimizers = model.configure_optimizers(config.learning_rate, config.weight_decay)
    n = x_train.shape[0]
    batch_size = max(1, min(int(config.batch_size), n))
    use_amp = device.type == "cuda" and torch.cuda.is_bf16_supported()
    pin = device.type == "cuda"
    x_train_dev = x_train.to(device) if device.type == "cuda" else x_train
    history: dict[str, Any] = {"train_loss": [], "val_loss": [], "epoch_seconds": [],
                               "best_epoch": 0, "stopped_early": False, "device": str(device)}
    best = math.inf
    best_state = copy.deepcopy(model.state_dict())
    bad_epochs = 0
    show = config.verbose == 1 and sys.stderr.isatty()
    prog = _progress(show, config.epochs, config.description)
    lines = _EpochLines(config.epochs) if config.verbose >= 2 else None
    first_loss: float | None = None
    threads = cpu_threads(model, device)
    threads.__enter__()
    try:
        for epoch in range(config.epochs):
            t0 = time.perf_counter()
            model.epoch = epoch
            model.train()
            perm = torch.randperm(n, generator=gen)
            if pin:
                perm = perm.to(device)
            total = torch.zeros((), device=device)
            n_batches = 0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                if idx.numel() < 2 and n > 1:  # a single-row batch breaks batch norm
                    continue
                xb = x_train_dev[idx]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    parts = model.train_step(xb, optimizers)
                total += parts["loss"].float()
                n_batches += 1
            train_loss = float(total) / max(1, n_batches)
            if not math.isfinite(train_loss):
                raise _divergence(epoch, "training loss", train_loss)
            if first_loss is None:
                first_loss = train_loss
            elif train_loss > 1e4 * max(abs(first_loss), 1e-3) and train_loss > 1e6:
                raise _divergence(epoch, "training loss (exploding)", train_loss)
            model.eval()
            val = predict_in_batches(
                lambda xb: model.validation_loss(xb).reshape(1) * xb.shape[0], x_val, device,
                fixed_shape=False,
            ).sum() / max(1, x_val.shape[0])
            val_loss = float(val)
            if not math.isfinite(val_loss):
                raise _divergence(epoch, "validation loss", val_loss)
            history["train_loss"].append(train_loss)
            history["val_loss"].append(val_loss)
            history["epoch_seconds"].append(time.perf_counter() - t0)
            if not math.isfinite(best) or val_loss < best - config.min_delta * max(1.0, abs(best)):
                best = val_loss
                best_state = copy.deepcopy(model.state_dict())
                history["best_epoch"] = epoch
                bad_epochs = 0
            else:
                bad_epochs += 1
            if prog is not None:
                prog.update(prog.task_ids[0], advance=1,
                            info=f"loss {train_loss:.4g}  val {val_loss:.4g}")
            stop = bad_epochs >= config.patience
            if lines is not None:
                lines.update(epoch, train_loss, val_loss, stop or epoch + 1 == config.epochs)
            if stop:
                history["stopped_early"] = True
                break
    finally:
        threads.__exit__()
        model.set_generator(None)
        if prog is not None:
            prog.stop()
    history["hit_epoch_cap"] = hit_epoch_cap(history, config.epochs, config.patience)
    model.load_state_dict(best_state)
    model.eval()
    with torch.inference_mode():
        advice = model.check_health(x_val.to(device))
    if advice:
        raise TrainingDivergedError(advice)
    model.finalize(x_train.to(device))
    return history
