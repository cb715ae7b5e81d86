"""The ``genad`` command line: train, calibrate, score, evaluate, report, info, generate,
demo.

Every error a user can cause (a missing or unreadable file, a bad column, a bad label,
a damaged model, a diverged training run, an ``--out`` that is one of the inputs) is
printed as one line ``error: <message>`` on stderr with exit code 1; usage errors (an
unknown option or choice) exit with 2. No traceback is shown; set ``GENAD_DEBUG=1`` to
see one for unexpected errors. Warnings are ``warning: <message>`` lines on stderr.

Every file is written atomically (a temporary file in the same folder, then a rename),
and ``--out`` may never be the data file being read (nor, except for ``calibrate``, the
model). When ``GENAD_BUNDLE_KEY`` is set, models are signed on save and checked on load
with that key.

Examples
--------
.. code-block:: console

    $ genad train transactions.csv --label-column Class --exclude-columns Time --out fraud.genad
    $ genad calibrate fraud.genad --target-fpr 0.001 --out fraud-0.1pct.genad
    $ genad score fraud.genad new.csv --id-column tx_id --keep-columns Amount --out scores.csv
    $ genad evaluate fraud.genad test.csv --label-column Class
    $ genad report fraud.genad test.csv --label-column Class --out report.html
    $ genad info fraud.genad
    $ genad train bottle/train --model conv-vae --size 64 --out bottle.genad
    $ genad score bottle.genad bottle/test --out bottle-scores.csv
    $ genad generate bottle.genad -n 64 --out samples.png
    $ genad demo
"""

from __future__ import annotations

import enum
import json
import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from genad import registry
from genad._text import counted
from genad.errors import GenadError, InvalidInputError

__all__ = ["app", "main"]


def _click_class(name: str) -> type[BaseException]:
    """The click exception class ``name`` that typer uses (vendored or not)."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name:
            return cls
    return typer.BadParameter


_ClickException = _click_class("ClickException")
_UsageError = _click_class("UsageError")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _usage_message(exc: Any) -> str:
    """A usage error's message without pydantic's ``Value error,`` prefix."""
    return str(exc.format_message()).replace("Value error, ", "")


def _fail(message: Any, code: int = 1) -> NoReturn:
    sys.stderr.write(f"error: {_one_line(message)}\n")
    sys.stderr.flush()
    sys.exit(code)


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show each distinct warning once, as ``warning: <message>`` on stderr."""
    seen: set[str] = set()

    def show(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
             line: Any = None) -> None:
        text = _one_line(message)
        if text not in seen:
            seen.add(text)
            sys.stderr.write(f"warning: {text}\n")

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the CLI decides: every distinct warning, once
        warnings.showwarning = show
        yield


class _FlagsMixin:
    """Show on/off options as flags in ``--help`` (typer labels them ``<bool>``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _Command(_FlagsMixin, TyperCommand):
    """A genad subcommand."""


class _Group(_FlagsMixin, TyperGroup):
    """Typer group whose errors are one line on stderr, never a traceback."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, **extra)
        try:
            with _warnings_as_lines():
                rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except _UsageError as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help())
                sys.exit(exc.exit_code)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(_usage_message(exc) + hint, exc.exit_code)
        except _ClickException as exc:
            _fail(exc.format_message(), getattr(exc, "exit_code", 1))
        except typer.Abort:
            _fail("aborted")
        except GenadError as exc:
            _fail(exc)
        except FileNotFoundError as exc:
            _fail(f"file not found: {exc.filename or exc}")
        except IsADirectoryError as exc:
            _fail(f"{exc.filename} is a folder, not a file")
        except PermissionError as exc:
            _fail(f"permission denied: {exc.filename or exc}")
        except OSError as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else exc)
        except Exception as exc:
            if os.environ.get("GENAD_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (this is probably a bug in genad; "
                  "run with GENAD_DEBUG=1 to see the traceback)")
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


app = typer.Typer(
    cls=_Group,
    name="genad",
    help="Find anomalies with generative models trained on normal data only.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


#: The ``--model`` choices: one member per preset of :mod:`genad.registry` (the value is
#: the preset name, the member name the same with ``_`` for ``-``). Built from the
#: registry, which does not import torch, so ``genad --version``, ``genad info`` and
#: ``--help`` stay fast.
ModelName = enum.Enum(
    "ModelName", [(n.replace("-", "_"), n) for n in registry.names()], type=str,
    module=__name__, qualname="ModelName",
)

_MODEL_HELP = "Detector to train: " + "; ".join(
    f"{p.name} = {p.summary}" for p in registry.PRESETS.values()
) + "."


def _version(value: bool) -> None:
    if value:
        import genad

        typer.echo(f"genad {genad.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True,
        help="Show the genad version and exit.",
    ),
) -> None:
    """Find anomalies with generative models trained on normal data only."""


# ------------------------------------------------------------------ helpers
def _open_rate(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"must be between 0 and 1 (exclusive), got {value:g}")
    return value


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _read(path: Path) -> Any:
    from genad.data.tabular import read_table

    return read_table(path)


def _names(values: list[str] | None) -> list[str]:
    """Column names from a repeatable, comma-separated option (``A,B --opt C``)."""
    names: list[str] = []
    for value in values or []:
        names.extend(n.strip() for n in value.split(",") if n.strip())
    return list(dict.fromkeys(names))


def _check_columns(names: list[str], df: Any, path: Path, what: str) -> None:
    """Raise naming the first of ``names`` that is not a column of ``df`` (read from ``path``)."""
    from genad._text import require_columns

    require_columns(names, [str(c) for c in df.columns], str(path), what)


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (same path, a symlink or a hard link)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _need_name(out: Path) -> None:
    if not out.name or out.is_dir():
        raise InvalidInputError(f"--out needs a file name, got {str(out)!r}"
                                + (" (a folder)" if out.name else ""))


def _check_out(out: Path, **inputs: Path | None) -> None:
    """Refuse an ``--out`` that is one of the files being read (it would be destroyed)."""
    _need_name(out)
    for what, path in inputs.items():
        if path is not None and _same_file(out, path):
            raise InvalidInputError(
                f"--out {out} is the {what} file being read ({path}); writing it would "
                "destroy it: choose another --out"
            )


def _key() -> str | None:
    """``$GENAD_BUNDLE_KEY`` (None when unset or empty): signs every save, checks every load."""
    return os.environ.get("GENAD_BUNDLE_KEY") or None


def _model_out(out: Path) -> Path:
    """The path a model is saved to: ``out``, with ``.genad`` appended when missing."""
    _need_name(out)
    return out if out.suffix == ".genad" else out.with_name(out.name + ".genad")


def _save(detector: Any, out: Path) -> Path:
    return Path(detector.save(out, key=_key()))


def _verbosity(quiet: bool) -> int:
    """0 with ``-q``; a progress bar on a terminal (1); plain lines in logs (2)."""
    if quiet:
        return 0
    return 1 if sys.stderr.isatty() else 2


def _split_labels(df: Any, column: str, path: Path) -> tuple[Any, Any]:
    """Drop the label column from ``df`` and return (features, 0/1 labels)."""
    from genad.data.tabular import split_labels

    return split_labels(df, column, path)


def _load(path: Path) -> Any:
    from genad.detector import Detector

    return Detector.load(path, key=_key())


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


def _pct(value: Any) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1%}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


# --------------------------------------------------------------- modality
class Modality(str, enum.Enum):
    """``--modality`` choices."""

    auto = "auto"
    tabular = "tabular"
    image = "image"


class ImageScore(str, enum.Enum):
    """``--image-score`` choices (``ImageAdapter(score=...)``)."""

    model = "model"
    max = "max"
    top_k = "top_k"


class ReconstructionLoss(str, enum.Enum):
    """``--loss`` choices."""

    l2 = "l2"
    ssim = "ssim"


class LatentMetric(str, enum.Enum):
    """``--latent-metric`` choices."""

    euclidean = "euclidean"
    cosine = "cosine"


def _models_taking(parameter: str, modality: str | None = None) -> list[str]:
    """The registered model names whose detector has ``parameter`` (and, with
    ``modality``, whose class declares that modality)."""
    takes = []
    for name in registry.names():
        cls = registry.load_class(name)
        if parameter in cls().get_params() and (
                modality is None or modality in (getattr(cls, "modalities", None) or ())):
            takes.append(name)
    return takes


def _latent_options(name: str, neighbors: int | None,
                    metric: LatentMetric | None) -> dict[str, Any]:
    """The detector arguments of ``--latent-neighbors`` / ``--latent-metric`` for ``name``."""
    if neighbors is None:
        if metric is not None:
            raise InvalidInputError("--latent-metric needs --latent-neighbors K")
        return {}
    takes = _models_taking("latent_neighbors")
    if name not in takes:
        raise InvalidInputError(f"--latent-neighbors: model {name!r} has no latent-distance "
                                f"score; models with one: {', '.join(takes)}")
    return {"latent_neighbors": neighbors,
            "latent_metric": (metric or LatentMetric.euclidean).value}


#: Parameters that ``genad train`` sets through options of its own: ``--set`` refuses
#: them and names the option.
_OWN_OPTIONS = {
    "epochs": "--epochs", "target_fpr": "--target-fpr", "random_state": "--seed",
    "device": "--device", "verbose": "--quiet", "latent_neighbors": "--latent-neighbors",
    "latent_metric": "--latent-metric", "n_members": "--members",
    "adapter": "--size, --tile, --image-score and --set",
}
_OWN_OPTIONS_BY_MODALITY = {
    "image": {"loss": "--loss", "size": "--size", "tile": "--tile", "score": "--image-score"},
    "tabular": {"categorical_columns": "--categorical"},
}

_SET_EXAMPLE = "such as --set learning_rate=1e-4"


def _setting_value(text: str) -> Any:
    """The value of ``--set NAME=VALUE``: a Python literal (``0.5``, ``[64, 32]``,
    ``None``, ``True``, ``'text'``), ``true``/``false``/``none``/``null`` in any case, else
    the text itself."""
    import ast

    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        words = {"true": True, "false": False, "none": None, "null": None}
        return words.get(text.strip().lower(), text.strip())


def _settings(values: list[str] | None, name: str, modality: str
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``--set NAME=VALUE`` options for model ``name``: (detector arguments, image
    adapter arguments).

    A name is a parameter of the model's detector or, for images, of ``ImageAdapter``
    that no other option sets; values are checked by the detector when it fits.
    """
    if not values:
        return {}, {}
    from genad._text import did_you_mean

    params = set(registry.load_class(name)().get_params(deep=False))
    adapter_params: set[str] = set()
    if modality == "image":
        from genad.data.image import ImageAdapter
        from genad.detector import TABLE_SHORTCUTS

        params -= set(TABLE_SHORTCUTS)  # options of the table adapter
        adapter_params = set(ImageAdapter().get_params()) - params
    own = {**_OWN_OPTIONS, **_OWN_OPTIONS_BY_MODALITY.get(modality, {})}
    settable = sorted((params | adapter_params) - set(own))
    detector: dict[str, Any] = {}
    adapter: dict[str, Any] = {}
    for value in values:
        key, equals, text = value.partition("=")
        key = key.strip()
        if not equals or not key:
            raise InvalidInputError(f"--set {value!r}: expected NAME=VALUE, {_SET_EXAMPLE}")
        if key in own:
            raise InvalidInputError(f"--set {key}: use {own[key]} instead")
        if key not in settable:
            raise InvalidInputError(
                f"--set {key}: model {name!r} has no parameter {key!r}"
                f"{did_you_mean(key, settable)}; its parameters: {', '.join(settable)}")
        chosen = adapter if key in adapter_params else detector
        if key in chosen:
            raise InvalidInputError(f"--set {key} is given twice")
        chosen[key] = _setting_value(text)
    return detector, adapter


def _fit(detector: Any, x: Any, y: Any) -> None:
    """``detector.fit(x, y)``; a diverged run's advice says how to set a parameter here."""
    from genad.errors import TrainingDivergedError

    try:
        detector.fit(x, y)
    except TrainingDivergedError as exc:
        raise TrainingDivergedError(
            f"{exc} (on the command line, set a parameter with --set NAME=VALUE, "
            f"{_SET_EXAMPLE})") from exc


def _modality(data: Path, forced: Modality) -> str:
    """``"image"`` or ``"tabular"``: ``--modality``, else detected from DATA (a folder, an
    image file or a manifest CSV with a path column are images)."""
    if forced is not Modality.auto:
        return forced.value
    from genad.data.image_io import is_image_source

    return "image" if is_image_source(data) else "tabular"


def _check_model_modality(name: str, modality: str) -> None:
    preset = registry.preset(name)
    if modality not in preset.modalities:
        fitting = ", ".join(registry.names(modality))
        noun = {"tabular": "tables", "image": "images"}.get(modality, modality)
        raise InvalidInputError(f"model {name!r} does not take {noun}; models for {noun}: "
                                f"{fitting}")


def _select_split(images: Any, labels: Any, split: str | None, default: str | None
                  ) -> tuple[Any, Any, str | None]:
    """The manifest rows of ``split`` (default ``default`` when the manifest has it; None:
    every row)."""
    import numpy as np

    splits = images.splits
    if splits is None:
        if split is not None:
            raise InvalidInputError(f"--split {split}: {images.source} has no split column")
        return images, labels, None
    chosen = split if split is not None else (default if default in splits else None)
    if chosen is None:
        return images, labels, None
    rows = np.array([s == chosen for s in splits])
    if not rows.any():
        raise InvalidInputError(f"--split {chosen}: no row of {images.source} has that split; "
                                f"its splits: {', '.join(sorted(set(splits)))}")
    return images.take(rows), None if labels is None else labels[rows], chosen


def _read_images(data: Path, split: str | None, default: str | None
                 ) -> tuple[Any, Any, str | None]:
    """Images of DATA with their labels (None without), restricted to a split."""
    from genad.data.image import ImageAdapter

    images, labels = ImageAdapter().read_labelled(data, None)
    return _select_split(images, labels, split, default)


def _train_images(data: Path, target: Path, model: Any, *, size: int | None,
                  tile: int | None, split: str | None, image_score: ImageScore | None,
                  latent: dict[str, Any], loss: ReconstructionLoss | None, target_fpr: float,
                  epochs: int | None, members: int, seed: int, device: str, verbose: int,
                  settings: list[str] | None) -> None:
    from genad.data.image import ImageAdapter

    name = model.value if model is not None else "conv-ae"
    _check_model_modality(name, "image")
    options, adapter_options = _settings(settings, name, "image")
    options.update(latent)
    if loss is not None:
        takes = _models_taking("loss", modality="image")
        if name not in takes:
            raise InvalidInputError(f"--loss: model {name!r} has no choice of reconstruction "
                                    f"error; models with one: {', '.join(takes)}")
        options["loss"] = loss.value
    score = image_score.value if image_score is not None else (
        "model" if latent else None)
    if latent and score != "model":
        raise InvalidInputError(
            f"--latent-neighbors makes the model's score a latent distance, but "
            f"--image-score {score} scores from the anomaly map; leave --image-score out "
            f"(with --latent-neighbors it is 'model')")
    adapter = ImageAdapter(size=size, tile=tile, **({"score": score} if score else {}),
                           **adapter_options)
    images, y, chosen = _read_images(data, split, "train")
    detector = registry.load_class(name)(
        adapter=adapter, target_fpr=target_fpr, epochs=epochs, n_members=members,
        random_state=seed, device=device, verbose=verbose, **options)
    _fit(detector, images, y)
    path = _save(detector, target)
    n = len(images)
    n_anomalies = int(y.sum()) if y is not None else 0
    adapter = detector.adapter_
    echo = typer.echo
    echo(f"trained {type(detector).__name__} on {n - n_anomalies:,} normal images of {n:,}"
         + (f" ({n_anomalies:,} labelled anomalies left out)" if n_anomalies else "")
         + (f", split {chosen!r}" if chosen else ""))
    h, w = adapter.size_
    echo(f"  images:    {h} x {w} px, {adapter.channels_} channel"
         f"{'s' if adapter.channels_ > 1 else ''}"
         + (f", {adapter.n_tiles_} tiles of {adapter.tile} px" if adapter.tile else ""))
    echo(_epochs_line(detector))
    echo(f"  threshold: {detector.threshold_:.6g} (target false-positive rate "
         f"{target_fpr:g} on {len(detector.calibration_scores_):,} held-out normal images)")
    echo(f"saved {path}")


def _averaged(span: Any) -> str:
    """``", weights averaged over N epochs"`` for a fit's weight-averaging span, else ``""``."""
    return f", weights averaged over {span:g} epochs" if isinstance(span, (int, float)) else ""


def _members(history: dict[str, Any]) -> str:
    """For an ensemble's history, ``"; N members from different random starts, scores
    averaged (epochs a, b, c; ...)"``; else ``""``."""
    epochs = history.get("member_epochs")
    if not isinstance(epochs, list):
        return ""
    return (f"; {len(epochs)} members from different random starts, scores averaged "
            f"(epochs {', '.join(map(str, epochs))}; the figures before are the first "
            "member's)")


def _epochs_line(detector: Any) -> str:
    """The ``epochs:`` line of the train summary."""
    history = detector.history_
    return (f"  epochs:    {detector.n_epochs_} (best {history['best_epoch'] + 1}"
            + (", stopped early" if history.get("stopped_early") else "")
            + _averaged(getattr(detector, "weight_averaging_", None)) + ")"
            + _members(history))


# ------------------------------------------------------------------ train
@app.command("train", cls=_Command)
def _train(
    data: Path = typer.Argument(
        ..., metavar="DATA",
        help="Training table (.csv, .tsv or .parquet), or images: a folder (class folders "
             "such as good/ and crack/ give labels), a manifest CSV (path, label, mask_path, "
             "split, group, crop_x/y/w/h) or one image file.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to save the model (.genad)."),
    model: ModelName | None = typer.Option(
        None, "--model", "-m", help=_MODEL_HELP + " Default: ae for tables, conv-ae for images."
    ),
    modality: Modality = typer.Option(
        Modality.auto, "--modality", help="Kind of DATA (default: detected from it)."),
    size: int | None = typer.Option(
        None, "--size", min=8,
        help="Images: the model's input side in pixels (default: the images' own size up "
             "to 128 px)."),
    tile: int | None = typer.Option(
        None, "--tile", min=8, help="Images: cut each resized image into TILE px squares."),
    split: str | None = typer.Option(
        None, "--split",
        help="Manifests with a split column: train on these rows (default: 'train' when "
             "present)."),
    image_score: ImageScore | None = typer.Option(
        None, "--image-score",
        help="Images: the image's score: model = the model's own, max = the hottest "
             "pixel of the map, top_k = the mean of its hottest 1 % (default: top_k; model "
             "with --latent-neighbors)."),
    latent_neighbors: int | None = typer.Option(
        None, "--latent-neighbors", min=1,
        help="ae, dae, vae, conv-ae, conv-vae: score by the mean distance of the latent "
             "code to its K nearest training codes (the map stays the model's own)."),
    latent_metric: LatentMetric | None = typer.Option(
        None, "--latent-metric",
        help="With --latent-neighbors: euclidean (each code dimension scaled; default) or "
             "cosine (the code's direction only: better for a new kind of image, such as "
             "an unseen digit or a diseased lung)."),
    loss: ReconstructionLoss | None = typer.Option(
        None, "--loss",
        help="Images, conv-ae: the reconstruction error: l2 (squared error; default) or "
             "ssim (1 - SSIM per pixel: local structure over exact intensities)."),
    label_column: str | None = typer.Option(
        None, "--label-column", "-l",
        help="0/1 label column (1 = anomaly). It is not a feature; rows labelled 1 are "
             "left out of training.",
    ),
    exclude_columns: list[str] | None = typer.Option(
        None, "--exclude-columns", "-x",
        help="Columns the model ignores (an id, a timestamp): comma-separated, or repeat "
             "the option.",
    ),
    target_fpr: float = typer.Option(
        0.01, "--target-fpr", callback=_open_rate,
        help="False-positive rate on held-out normal rows at which the threshold is set "
             "(change it later with 'genad calibrate').",
    ),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Maximum epochs (default: automatic)."),
    members: int = typer.Option(
        1, "--members", min=1,
        help="Train this many networks from different random starts and average their "
             "scores: steadier from seed to seed, at MEMBERS times the cost (default 1)."),
    categorical: list[str] | None = typer.Option(
        None, "--categorical", "-c",
        help="Treat this column as categorical: comma-separated, or repeat the option.",
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1,
        help="Seed of the split, initialisation and shuffling: the same seed and data give "
             "the same model.",
    ),
    random_state: int | None = typer.Option(None, "--random-state", hidden=True,
                                            help="Old name of --seed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    settings: list[str] | None = typer.Option(
        None, "--set", metavar="NAME=VALUE",
        help="Set any other parameter of the model's detector (repeat the option), such as "
             "--set learning_rate=1e-4 --set hidden_sizes=[64,32] --set "
             "pause_discriminator_below=0.5; for images also the image settings, such as "
             "--set smoothing=2. VALUE is a number, true/false, none, a list or text; an "
             "unknown NAME lists the model's parameters."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q",
        help="No progress (a bar on a terminal, a line every few epochs otherwise).",
    ),
) -> None:
    """Train a detector on the normal rows (or images) of DATA and save it to one .genad
    file."""
    target = _model_out(out)
    _check_out(target, data=data)
    if _modality(data, modality) == "image":
        if label_column is not None or exclude_columns or categorical:
            raise InvalidInputError("--label-column, --exclude-columns and --categorical are "
                                    "for tables; images take labels from a manifest's label "
                                    "column or from class folders")
        latent = _latent_options(model.value if model else "conv-ae", latent_neighbors,
                                 latent_metric)
        _train_images(data, target, model, size=size, tile=tile, split=split,
                      image_score=image_score, latent=latent, loss=loss,
                      target_fpr=target_fpr, epochs=epochs, members=members,
                      seed=seed if random_state is None else random_state, device=device,
                      verbose=_verbosity(quiet), settings=settings)
        return
    if (size is not None or tile is not None or split is not None or image_score is not None
            or loss is not None):
        raise InvalidInputError("--size, --tile, --split, --image-score and --loss are for "
                                "images; DATA is a table")
    model = model or ModelName("ae")
    _check_model_modality(model.value, "tabular")
    latent = _latent_options(model.value, latent_neighbors, latent_metric)
    options = {**_settings(settings, model.value, "tabular")[0], **latent}
    df = _read(data)
    excluded = _names(exclude_columns)
    _check_columns(excluded, df, data, "excluded column")
    y = None
    if label_column is not None:
        df, y = _split_labels(df, label_column, data)
    df = df.drop(columns=[c for c in excluded if c in df.columns])
    if df.shape[1] == 0:
        raise InvalidInputError(f"no column of {data} is left to train on after "
                                "--label-column and --exclude-columns")
    detector = registry.load_class(model.value)(
        target_fpr=target_fpr, epochs=epochs, n_members=members,
        categorical_columns=_names(categorical) or None,
        random_state=seed if random_state is None else random_state, device=device,
        verbose=_verbosity(quiet), **options,
    )
    _fit(detector, df, y)
    path = _save(detector, target)
    n_anomalies = int(y.sum()) if y is not None else 0
    n_cal = len(detector.calibration_scores_)
    echo = typer.echo
    echo(f"trained {type(detector).__name__} on {len(df) - n_anomalies:,} normal rows "
         f"of {len(df):,}" + (f" ({n_anomalies:,} labelled anomalies left out)"
                               if n_anomalies else ""))
    echo(f"  columns:   {len(detector.adapter_.column_names_)} used "
         f"({detector.adapter_.n_features_out_} encoded features)"
         + (f"; excluded {', '.join(excluded)}" if excluded else ""))
    echo(_epochs_line(detector))
    echo(f"  threshold: {detector.threshold_:.6g} (target false-positive rate "
         f"{target_fpr:g} on {n_cal:,} held-out normal rows)")
    echo(f"saved {path}")


# -------------------------------------------------------------- calibrate
@app.command("calibrate", cls=_Command)
def _calibrate(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A .genad model file."),
    out: Path = typer.Option(
        ..., "--out", "-o",
        help="Where to save the recalibrated model (.genad); may be MODEL itself (the file "
             "is replaced atomically).",
    ),
    target_fpr: float | None = typer.Option(
        None, "--target-fpr", callback=lambda v: v if v is None else _open_rate(v),
        help="Wanted false-positive rate on normal rows (default: the model's own).",
    ),
    data: Path | None = typer.Option(
        None, "--data", "-d",
        help="New normal data to calibrate on: rows (.csv, .tsv or .parquet), or images for "
             "an image model (folder, manifest CSV); they replace the stored held-out "
             "normals. Default: re-threshold on the stored ones.",
    ),
    label_column: str | None = typer.Option(
        None, "--label-column", "-l",
        help="0/1 label column of --data; rows labelled 1 are left out (images: labels "
             "come from class folders or the manifest).",
    ),
    split: str | None = typer.Option(
        None, "--split",
        help="Images: a manifest with a split column calibrates on these rows (needed "
             "there: no split is picked for you).",
    ),
) -> None:
    """Move the threshold of MODEL to a new false-positive rate, without retraining."""
    import numpy as np

    for given, option in ((label_column, "--label-column"), (split, "--split")):
        if given is not None and data is None:
            raise typer.BadParameter("needs --data", param_hint=f"'{option}'")
    target = _model_out(out)
    _check_out(target, data=data)
    detector = _load(model_path)
    old = detector.threshold_
    fpr = detector.target_fpr if target_fpr is None else target_fpr
    unit = "image" if detector.adapter_.kind == "image" else "row"
    if data is None:
        detector.calibrate(target_fpr=fpr)
        source = f"stored held-out normal {unit}s"
    elif unit == "image":
        if label_column is not None:
            raise InvalidInputError("--label-column is for tables; images take their labels "
                                    "from class folders or the manifest's label column")
        images, y, chosen = _read_images(data, split, None)
        if images.splits is not None and chosen is None:
            raise InvalidInputError(
                f"{data.name} has a split column ({', '.join(sorted(set(images.splits)))}): "
                "say which rows are the new normal images with --split")
        detector.calibrate(images, y, target_fpr=fpr)
        source = f"normal images of {data.name}" + (f" (split {chosen!r})" if chosen else "")
    else:
        if split is not None:
            raise InvalidInputError("--split is for image models")
        df = _read(data)
        y = None
        if label_column is not None:
            df, y = _split_labels(df, label_column, data)
        detector.calibrate(df, y, target_fpr=fpr)
        source = f"normal rows of {data.name}"
    path = _save(detector, target)
    scores = np.asarray(detector.calibration_scores_)
    rate = float(np.mean(scores > detector.threshold_))
    typer.echo(f"threshold: {old:.6g} -> {detector.threshold_:.6g} (target false-positive "
               f"rate {fpr:g} on {len(scores):,} {source})")
    typer.echo(f"  expected alert rate on normal {unit}s: {rate:.3%} "
               f"(about {rate * 1e5:,.0f} alerts per 100,000 normal {unit}s)")
    typer.echo(f"saved {path}")


# ------------------------------------------------------------------ score
@app.command("score", cls=_Command)
def _score(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A .genad model file."),
    data: Path = typer.Argument(
        ..., metavar="DATA",
        help="Table to score (.csv, .tsv or .parquet), or images (folder, manifest CSV, "
             "image file) for an image model."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output table (.csv or .parquet)."),
    top_k: int = typer.Option(3, "--top-k", min=1,
                              help="Columns (tables) or hot spots (images) listed in "
                                   "top_features per row."),
    overlays: Path | None = typer.Option(
        None, "--overlays",
        help="Images: folder for overlay PNGs of the flagged images (default: OUT's name "
             "with _overlays)."),
    no_overlays: bool = typer.Option(False, "--no-overlays", help="Images: no overlays."),
    split: str | None = typer.Option(
        None, "--split", help="Manifests with a split column: score these rows (default: "
                              "'test' when present)."),
    id_column: str | None = typer.Option(
        None, "--id-column", "-i", help="Column of DATA copied first into the output."),
    keep_columns: list[str] | None = typer.Option(
        None, "--keep-columns", "-k",
        help="Columns of DATA copied into the output: comma-separated, or repeat the option.",
    ),
) -> None:
    """Score every row of DATA: anomaly_score, p_value, is_anomaly, top_features.

    Output rows are in the order of DATA, after the --id-column and --keep-columns
    columns when asked for. Columns the model does not use (a label, an id) are ignored.
    """
    from genad.scoring import score_file, score_images

    _check_out(out, model=model_path, data=data)
    detector = _load(model_path)
    if detector.adapter_.kind == "image":
        if id_column is not None or keep_columns:
            raise InvalidInputError("--id-column and --keep-columns are for tables; image "
                                    "scores are keyed by the image's path")
        images, _, chosen = _read_images(data, split, "test")
        folder = None if no_overlays else (
            overlays or out.with_name(out.stem + "_overlays"))
        result = score_images(detector, images, out, overlays=folder, top_k=top_k)
        typer.echo(f"scored {counted(result.n_rows, 'image')}"
                   + (f" (split {chosen!r})" if chosen else "")
                   + f"; flagged {result.n_flagged:,} "
                   f"({result.n_flagged / max(1, result.n_rows):.2%}) above threshold "
                   f"{detector.threshold_:.6g}")
        typer.echo(f"wrote {out}")
        if folder is not None:
            typer.echo(f"wrote {counted(len(result.overlays), 'overlay')} to {folder}")
        return
    if split is not None or overlays is not None or no_overlays:
        raise InvalidInputError("--split, --overlays and --no-overlays are for image models")
    summary = score_file(detector, data, out, top_k=top_k, id_column=id_column,
                         keep_columns=_names(keep_columns))
    n_flagged, n_rows = summary.n_flagged, summary.n_rows
    typer.echo(f"scored {counted(n_rows, 'row')}; flagged {n_flagged:,} "
               f"({n_flagged / max(1, n_rows):.2%}) above threshold {detector.threshold_:.6g}")
    typer.echo(f"wrote {out}")


# --------------------------------------------------------------- evaluate
@app.command("evaluate", cls=_Command)
def _evaluate(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A .genad model file."),
    data: Path = typer.Argument(
        ..., metavar="DATA",
        help="Labelled table (.csv, .tsv or .parquet), or labelled images (a manifest with "
             "a label column, or class folders) for an image model.",
    ),
    label_column: str | None = typer.Option(
        None, "--label-column", "-l",
        help="0/1 label column (1 = anomaly); needed for tables."),
    split: str | None = typer.Option(
        None, "--split", help="Manifests with a split column: evaluate these rows (default: "
                              "'test' when present)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """AUROC, AUPRC, precision@k, and precision/recall/F1 at the model's threshold; for
    images with masks also pixel AUROC and AUPRO."""
    from genad.metrics import evaluate_scores

    detector = _load(model_path)
    pixel: dict[str, Any] = {}
    if detector.adapter_.kind == "image":
        images, y, _ = _read_images(data, split, "test")
        if y is None:
            raise InvalidInputError(f"{data} carries no labels: give a manifest with a label "
                                    "column, or class folders (good/ and the defect kinds)")
        masks = detector.adapter_.load_masks(images)
        if masks is not None:
            scores, maps = detector._score_and_map(images)
            pixel = _pixel_metrics(masks, maps)
        else:
            scores = detector.anomaly_score(images)
    else:
        if label_column is None:
            raise typer.BadParameter("is needed to evaluate on a table",
                                     param_hint="'--label-column'")
        if split is not None:
            raise InvalidInputError("--split is for image manifests")
        df, y = _split_labels(_read(data), label_column, data)
        scores = detector.anomaly_score(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_scores(y, scores, detector.threshold_)
    metrics.update(pixel)
    if as_json:
        typer.echo(json.dumps(_jsonable(metrics), indent=2))
        return
    if metrics["n_anomalies"] in (0, metrics["n"]):
        sys.stderr.write("warning: the labels hold one class only; AUROC, AUPRC and "
                         "precision@k are undefined (n/a)\n")
    from rich.table import Table

    table = Table(title=f"{type(detector).__name__} on {data.name}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("rows", metrics["n"]),
        ("anomalies (label 1)", metrics["n_anomalies"]),
        ("AUROC", metrics["auroc"]),
        ("AUPRC", metrics["auprc"]),
        (f"precision@{metrics['n_anomalies']}", metrics.get("precision_at_k")),
        ("threshold", metrics["threshold"]),
        ("precision", metrics["precision"]),
        ("recall", metrics["recall"]),
        ("F1", metrics["f1"]),
        ("false-positive rate", metrics["false_positive_rate"]),
        ("TP / FP / FN / TN",
         f"{metrics['tp']:,} / {metrics['fp']:,} / {metrics['fn']:,} / {metrics['tn']:,}"),
    ]
    rows += [(label, metrics[key]) for key, label in (("pixel_auroc", "pixel AUROC"),
                                                      ("aupro", "AUPRO (FPR <= 0.3)"))
             if key in metrics]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    _console().print(table)


def _pixel_metrics(masks: list[Any], maps: Any) -> dict[str, float]:
    """Pixel AUROC and AUPRO of the maps against the ground-truth masks."""
    from genad.metrics import aupro, pixel_auroc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"pixel_auroc": pixel_auroc(masks, list(maps)),
                "aupro": aupro(masks, list(maps), fpr_limit=0.3)}


# ----------------------------------------------------------------- report
@app.command("report", cls=_Command)
def _report(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A .genad model file."),
    data: Path = typer.Argument(
        ..., metavar="DATA",
        help="Table to report on (.csv, .tsv or .parquet), or images for an image model: a "
             "folder (class folders such as good/ and crack/ give labels), a manifest CSV "
             "(label and mask_path columns are used) or one image file.",
    ),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    label_column: str | None = typer.Option(
        None, "--label-column", "-l", help="Tables: 0/1 label column (1 = anomaly), if known."),
    title: str | None = typer.Option(None, "--title", help="Page title."),
    top_n: int | None = typer.Option(
        None, "--top-n", min=1,
        help="Rows in the top-anomalies table (default 20); for images, images per gallery "
             "(default 8)."),
    id_column: str | None = typer.Option(
        None, "--id-column", "-i", help="Tables: column of DATA that identifies each row."),
    split: str | None = typer.Option(
        None, "--split", help="Image manifests with a split column: report on these rows "
                              "(default: 'test' when present)."),
) -> None:
    """Write a self-contained HTML report of MODEL on DATA (for images: galleries of the
    most anomalous images with their maps, false alarms, missed anomalies, and samples
    generated by the model)."""
    _check_out(out, model=model_path, data=data)
    detector = _load(model_path)
    if detector.adapter_.kind == "image":
        from genad.report import build_image_report

        if label_column is not None or id_column is not None:
            raise InvalidInputError(
                "--label-column and --id-column are for tables; image labels come from a "
                "manifest's label column or from class folders, and images are named by "
                "their path")
        images, y, chosen = _read_images(data, split, "test")
        path = build_image_report(
            detector, images, y, out=out, title=title, gallery_n=8 if top_n is None else top_n,
            source_name=data.name + (f" (split {chosen})" if chosen else ""))
        typer.echo(f"wrote {path}")
        return
    from genad.report import build_report

    if split is not None:
        raise InvalidInputError("--split is for image manifests")
    df = _read(data)
    if id_column is not None:
        _check_columns([id_column], df, data, "id column")
    y = None
    if label_column is not None:
        df, y = _split_labels(df, label_column, data)
    path = build_report(detector, df, y, out=out, title=title,
                        top_n=20 if top_n is None else top_n, id_column=id_column,
                        source_name=data.name)
    typer.echo(f"wrote {path}")


# ------------------------------------------------------------------- info
@app.command("info", cls=_Command)
def _info(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A .genad model file."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole model document."),
) -> None:
    """Describe a saved model: class, parameters, columns or image settings, threshold,
    training, versions."""
    from genad.bundle import read_document

    detector = _load(model_path)  # verifies the weights too, not only the document
    doc = read_document(model_path, key=_key())
    if as_json:
        typer.echo(json.dumps(_jsonable(doc), indent=2))
        return
    from rich.table import Table

    fitted = doc.get("fitted", {})
    history = doc.get("history", {})
    adapter = doc.get("adapter", {})
    console = _console()
    console.print(f"[bold]{doc.get('detector')}[/bold]  {model_path} "
                  f"(genad format {doc.get('genad_format')})")
    setting = fitted.get("threshold_setting_")
    console.print(f"threshold  {_fmt(fitted.get('threshold_'))} "
                  f"({fitted.get('threshold_method_')}"
                  + (f" {setting:g}" if isinstance(setting, (int, float)) else "") + ")")
    best = history.get("best_epoch")
    console.print(
        f"training   {fitted.get('n_epochs_')} epochs"
        + (f", best {best + 1}" if isinstance(best, int) else "")
        + (", stopped early" if history.get("stopped_early") else "")
        + (", hit the epoch cap while still improving" if history.get("hit_epoch_cap") else "")
        + _averaged(fitted.get("weight_averaging_"))
        + f", {sum(history.get('epoch_seconds', [])):.1f} s on {history.get('device', '?')}"
        + _members(history)
    )
    network = detector._network_summary()  # what the report's summary says too
    if network is not None:
        console.print(f"network    {network}", markup=False)
    versions = doc.get("versions", {})
    console.print("versions   " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    params = Table(title="parameters", title_justify="left")
    params.add_column("name")
    params.add_column("value")
    for k, v in doc.get("params", {}).items():
        params.add_row(k, repr(v) if isinstance(v, float) else str(v))
    console.print(params)

    if doc.get("adapter_kind") == "image":
        size = adapter.get("size", ["?", "?"])
        image_params = adapter.get("params", {})
        console.print(f"images     {size[0]} x {size[1]} px, {adapter.get('channels')} "
                      f"channel(s), resize {image_params.get('resize')}, tile "
                      f"{image_params.get('tile') or 'none'}, image score "
                      f"{image_params.get('score')}"
                      + (", mean over tiles" if image_params.get("tile")
                         and image_params.get("score") == "model"
                         and image_params.get("tile_score") == "mean" else "")
                      + (", histogram equalised" if image_params.get("equalize") else ""))
        return
    columns = Table(title=f"columns ({len(adapter.get('columns', []))} used)",
                    title_justify="left")
    columns.add_column("column")
    columns.add_column("kind")
    columns.add_column("categories", justify="right")
    columns.add_column("missing indicator")
    for c in adapter.get("columns", []):
        columns.add_row(str(c["name"]), c["kind"],
                        str(len(c["categories"])) if c["kind"] == "categorical" else "",
                        "yes" if c.get("indicator") else "")
    for name in adapter.get("dropped_columns", []):
        columns.add_row(str(name), "dropped (constant)", "", "")
    console.print(columns)


# --------------------------------------------------------------- generate
@app.command("generate", cls=_Command)
def _generate(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A .genad image model."),
    n: int = typer.Option(64, "-n", "--n", min=1, max=4096, help="Number of samples."),
    out: Path = typer.Option(Path("samples.png"), "--out", "-o",
                             help="PNG grid of the samples."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the draws."),
) -> None:
    """Draw samples from MODEL and write them as a PNG grid: what it thinks normal looks
    like (VAEs and GANs; a plain autoencoder has no prior to sample)."""
    from genad._io import atomic_path
    from genad.report.images import grid

    _check_out(out, model=model_path)
    if out.suffix.lower() != ".png":
        raise InvalidInputError(f"--out must end in .png, got {out.name!r}")
    detector = _load(model_path)
    samples = detector.sample(n, random_state=seed)
    with atomic_path(out) as tmp:
        grid(samples).save(tmp, format="PNG")
    typer.echo(f"wrote {n} samples of {type(detector).__name__} to {out}")


# ------------------------------------------------------------------- demo
@app.command("demo", cls=_Command)
def _demo(
    out: Path = typer.Option(Path("genad-demo-report.html"), "--out", "-o",
                             help="HTML report to write."),
    model: ModelName = typer.Option(
        ModelName("vae"), "--model", "-m", help=_MODEL_HELP
    ),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Maximum epochs (default: automatic)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1,
                             help="Seed of the split and the model."),
    random_state: int | None = typer.Option(None, "--random-state", hidden=True,
                                            help="Old name of --seed."),
) -> None:
    """Train on real data shipped with scikit-learn and write a report.

    Wisconsin breast cancer: benign rows are normal, malignant rows are the anomalies.
    Stratified 70/30 split; the detector is fitted on the benign training rows and
    evaluated on the whole test part.
    """
    from genad.demo import run_demo

    typer.echo("Wisconsin breast cancer (scikit-learn): benign = normal, malignant = anomaly")
    res = run_demo(out, model=model.value, epochs=epochs,
                   random_state=seed if random_state is None else random_state,
                   verbose=_verbosity(False))
    m = res.metrics
    typer.echo(f"trained {type(res.detector).__name__} on {res.n_train_normal} benign rows "
               f"({res.detector.n_epochs_} epochs; fit {res.fit_seconds:.1f} s, of which "
               f"training loop {res.train_loop_seconds:.1f} s)")
    typer.echo(f"test: {res.n_test} rows, {res.n_test_anomalies} malignant")
    typer.echo(f"AUROC {res.auroc:.3f}   AUPRC {res.auprc:.3f}")
    setting = res.detector.threshold_setting_
    how = f" (target false-positive rate {setting:.0%})" if setting is not None else ""
    typer.echo(f"at threshold {m['threshold']:.4g}{how}: precision {_pct(m['precision'])}, "
               f"recall {_pct(m['recall'])}, false-positive rate "
               f"{_pct(m['false_positive_rate'])}")
    typer.echo(f"report: {res.report_path}")


def main() -> None:
    """Run the ``genad`` command line (the console-script entry point).

    Examples
    --------
    .. code-block:: console

        $ genad --version
        genad 0.1.0
    """
    app(prog_name="genad")


if __name__ == "__main__":  # pragma: no cover
    main()
