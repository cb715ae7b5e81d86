"""The real ``genad`` console script on images, every step in its own process.

For each image preset: ``train FOLDER`` -> ``score`` (CSV and overlays; ``genad.load`` in
a fresh interpreter must give the scores the CSV holds) -> ``generate``; for an AE and a
GAN (``PIPELINE_MODELS``) also ``info``, ``evaluate`` (image metrics from class folders;
pixel metrics from a manifest's masks) and ``report``. Plus the modality errors: a table
model given images and an image model given a table fail in one line.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from genad import registry
from tests.test_cli_e2e import GENAD, _run, assert_ok, genad_cli

pytestmark = pytest.mark.skipif(GENAD is None, reason="the genad console script is not "
                                "installed (pip install -e .)")

SIDE = 16


def _image(rng: np.random.Generator, defect: bool) -> np.ndarray:
    """A smooth gradient with noise; a defect is a bright 4 x 4 square."""
    ramp = np.linspace(40, 120, SIDE)
    img = ramp[None, :] + ramp[:, None] / 2 + rng.normal(0, 4, size=(SIDE, SIDE))
    if defect:
        y, x = rng.integers(2, SIDE - 6, size=2)
        img[y : y + 4, x : x + 4] = 250
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rows = []
    for split, kind, n in (("train", "good", 48), ("test", "good", 10), ("test", "spot", 10)):
        folder = root / split / kind
        folder.mkdir(parents=True)
        (root / "masks").mkdir(exist_ok=True)
        for i in range(n):
            img = _image(rng, kind == "spot")
            name = f"{split}/{kind}/{i:03d}.png"
            Image.fromarray(img).save(root / name)
            mask = ""
            if kind == "spot":
                mask = f"masks/{split}_{i:03d}.png"
                Image.fromarray(((img == 250) * 255).astype(np.uint8)).save(root / mask)
            rows.append({"path": name, "label": int(kind == "spot"), "split": split,
                         "mask_path": mask})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root


#: presets that also run ``info``, ``evaluate`` and ``report`` (commands that do not
#: depend on the preset): an AE and a GAN; every preset trains, scores and generates
PIPELINE_MODELS = ["conv-ae", "vaegan"]


@pytest.fixture(scope="module")
def _trainings() -> dict[str, tuple]:
    return {}


def _trained_once(name: str, images, cache: dict[str, tuple]) -> tuple:
    if name not in cache:
        model = images / f"{name}.genad"
        proc = genad_cli("train", images / "train", "--model", name, "--epochs", "2",
                         "--target-fpr", "0.1", "--out", model)
        assert_ok(proc)
        cache[name] = (name, model, proc)
    return cache[name]


@pytest.fixture(scope="module", params=registry.names("image"))
def trained(request, images, _trainings):
    """Every image preset, trained by the console script: ``(name, path, process)``."""
    return _trained_once(request.param, images, _trainings)


@pytest.fixture(scope="module", params=PIPELINE_MODELS)
def pipeline(request, images, _trainings):
    """The presets of :data:`PIPELINE_MODELS`, trained by the console script."""
    return _trained_once(request.param, images, _trainings)



def _assert_fresh_load_scores_as_csv(model, data, scores_csv, check: str = "True") -> None:
    """A fresh interpreter loads ``model`` (``check`` holds on it, the detector ``d``) and
    scores ``data`` exactly as ``genad score`` wrote to ``scores_csv``."""
    code = ("import sys, genad, numpy as np, pandas as pd; d = genad.load(sys.argv[1]); "
            f"assert {check}, d.get_params(); "
            "s = d.anomaly_score(sys.argv[2]); t = pd.read_csv(sys.argv[3]); "
            "assert np.array_equal(np.float32(s), np.float32(t['anomaly_score'])), (s, t)")
    proc = _run(sys.executable, "-c", code, model, data, scores_csv)
    assert proc.returncode == 0, proc.stderr


def test_train_reports_the_images(trained):
    name, model, proc = trained
    assert model.is_file()
    assert "on 48 normal images of 48" in proc.stdout
    assert f"{SIDE} x {SIDE} px, 1 channel" in proc.stdout
    assert "weights averaged over 2 epochs" in proc.stdout  # weight_averaging="auto"


def test_info_describes_the_image_settings(pipeline):
    _, model, _ = pipeline
    proc = genad_cli("info", model)
    assert_ok(proc)
    assert f"images     {SIDE} x {SIDE} px" in proc.stdout
    text = " ".join(proc.stdout.split())  # rich wraps
    assert "weights averaged over 2 epochs" in text
    assert f"network 2-D conv, 1 \u00d7 {SIDE} \u00d7 {SIDE} \u2192 latent " in text


def test_score_writes_a_row_per_image_and_overlays_of_flagged_ones(trained, images, tmp_path):
    name, model, _ = trained
    out = tmp_path / "scores.csv"
    proc = genad_cli("score", model, images / "test", "--out", out)
    assert_ok(proc)
    table = pd.read_csv(out)
    assert list(table.columns) == ["image", "anomaly_score", "p_value", "is_anomaly",
                                   "top_features"]
    assert len(table) == 20 and table["image"].str.endswith(".png").all()
    assert np.isfinite(table["anomaly_score"]).all()
    overlays = sorted((tmp_path / "scores_overlays").glob("*.png"))
    assert len(overlays) == int(table["is_anomaly"].sum())
    if overlays:
        with Image.open(overlays[0]) as im:
            assert im.size == (SIDE, SIDE)
    # a fresh interpreter loads the model and scores exactly what the CSV says
    _assert_fresh_load_scores_as_csv(model, images / "test", out)


def test_evaluate_on_class_folders_and_on_a_manifest_with_masks(pipeline, images):
    _, model, _ = pipeline
    proc = genad_cli("evaluate", model, images / "test", "--json")
    assert_ok(proc)
    metrics = json.loads(proc.stdout)
    assert metrics["n"] == 20 and metrics["n_anomalies"] == 10
    assert 0.0 <= metrics["auroc"] <= 1.0 and "pixel_auroc" not in metrics
    proc = genad_cli("evaluate", model, images / "manifest.csv", "--json")
    assert_ok(proc)
    metrics = json.loads(proc.stdout)
    assert metrics["n"] == 20  # the manifest's test split by default
    assert 0.0 <= metrics["pixel_auroc"] <= 1.0 and 0.0 <= metrics["aupro"] <= 1.0


def test_generate_writes_a_grid_or_says_the_model_cannot(trained, tmp_path):
    name, model, _ = trained
    out = tmp_path / "grid.png"
    proc = genad_cli("generate", model, "-n", "4", "--out", out)
    if not registry.preset(name).generates:  # conv-ae, draem: no prior to sample from
        assert proc.returncode == 1 and "cannot generate" in proc.stderr
        able = registry.names("image", generates=True)
        assert able and f"models that can: {', '.join(map(repr, able))}" in proc.stderr
        assert "Traceback" not in proc.stderr
        return
    assert_ok(proc)
    with Image.open(out) as im:
        assert im.size[0] >= 2 * SIDE and im.size[1] >= 2 * SIDE


def test_a_table_model_refuses_images_and_an_image_model_a_table(images, tmp_path):
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) ** 2}).to_csv(table, index=False)
    proc = genad_cli("train", images / "train", "--model", "ae", "--out", tmp_path / "x")
    assert proc.returncode == 1 and "does not take images" in proc.stderr
    assert "conv-ae" in proc.stderr and "Traceback" not in proc.stderr
    proc = genad_cli("train", table, "--model", "conv-ae", "--out", tmp_path / "y")
    assert proc.returncode == 1 and "does not take tables" in proc.stderr
    for option, value in (("--image-score", "max"), ("--loss", "ssim")):
        proc = genad_cli("train", table, option, value, "--out", tmp_path / "y")
        assert proc.returncode == 1, proc.stderr
        assert "--image-score and --loss are for images; DATA is a table" in proc.stderr
    tab = tmp_path / "tab.genad"
    assert_ok(genad_cli("train", table, "--epochs", "1", "--out", tab, "-q"))
    proc = genad_cli("score", tab, images / "test", "--out", tmp_path / "s.csv")
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_calibrate_on_new_normal_images_then_score_in_new_processes(images, _trainings,
                                                                    tmp_path):
    """``calibrate --data`` takes images: class folders (the anomalies are left out) or a
    manifest's split; the saved threshold is the one ``score`` applies next."""
    _, model, _ = _trained_once("conv-ae", images, _trainings)
    out = tmp_path / "recal.genad"
    proc = genad_cli("calibrate", model, "--data", images / "test", "--target-fpr", "0.2",
                     "--out", out)
    assert_ok(proc)
    assert "on 10 normal images of test" in proc.stdout  # the 10 spot images left out
    assert "expected alert rate on normal images" in proc.stdout
    code = ("import sys, genad, numpy as np; d = genad.load(sys.argv[1]); "
            "s = d.anomaly_score(sys.argv[2]); c = np.sort(d.calibration_scores_); "
            "assert c.size == 10 and np.allclose(c, np.sort(s)), (c, s); "
            "print(repr(float(d.threshold_)))")
    fresh = _run(sys.executable, "-c", code, out, images / "test" / "good")
    assert fresh.returncode == 0, fresh.stderr
    threshold = float(fresh.stdout.strip())
    scores = tmp_path / "s.csv"
    assert_ok(genad_cli("score", out, images / "test", "--out", scores, "--no-overlays"))
    table = pd.read_csv(scores)
    assert (table["is_anomaly"] == (table["anomaly_score"] > threshold)).all()
    # a manifest with a split column needs --split; with it, only those rows count
    proc = genad_cli("calibrate", model, "--data", images / "manifest.csv", "--out", out)
    assert proc.returncode == 1 and "say which rows are the new normal images with --split" \
        in proc.stderr and "Traceback" not in proc.stderr
    proc = genad_cli("calibrate", model, "--data", images / "manifest.csv", "--split", "test",
                     "--target-fpr", "0.2", "--out", out)
    assert_ok(proc)
    assert "on 10 normal images of manifest.csv (split 'test')" in proc.stdout
    proc = genad_cli("calibrate", model, "--data", images / "test", "--label-column", "y",
                     "--out", out)
    assert proc.returncode == 1 and "--label-column is for tables" in proc.stderr


def test_modality_option_forces_tables(images, tmp_path):
    proc = genad_cli("train", images / "manifest.csv", "--modality", "tabular",
                     "--model", "conv-ae", "--out", tmp_path / "z")
    assert proc.returncode == 1 and "does not take tables" in proc.stderr



def test_report_shows_galleries_with_maps(pipeline, images, tmp_path):
    _, model, _ = pipeline
    out = tmp_path / "report.html"
    proc = genad_cli("report", model, images / "manifest.csv", "--out", out)
    assert_ok(proc)
    html = out.read_text(encoding="utf-8")
    assert "Most anomalous images" in html and "data:image/png;base64," in html
    assert "Pixel AUROC" in html  # the manifest's masks give pixel metrics


def _train_score_and_load_fresh(images, tmp_path, train_args: list[str], check: str) -> None:
    """``genad train`` with ``train_args`` (2 epochs), ``genad score`` in a new process, and
    a fresh interpreter that loads the model (``check`` holds) and scores the same."""
    model = tmp_path / "m.genad"
    assert_ok(genad_cli("train", images / "train", *train_args, "--epochs", "2",
                        "--target-fpr", "0.1", "--out", model, "-q"))
    out = tmp_path / "scores.csv"
    assert_ok(genad_cli("score", model, images / "test", "--out", out))
    _assert_fresh_load_scores_as_csv(model, images / "test", out, check)


def test_train_with_a_cosine_latent_distance_scores_in_a_new_process(images, tmp_path):
    """The chest X-ray recipe (docs/images.md): cosine latent distance on equalised images."""
    _train_score_and_load_fresh(
        images, tmp_path,
        ["--model", "conv-vae", "--latent-neighbors", "3", "--latent-metric", "cosine",
         "--set", "equalize=true"],
        "d.latent_neighbors == 3 and d.latent_metric == 'cosine' and "
        "d.adapter_.score == 'model' and d.adapter_.equalize is True")
    info = genad_cli("info", tmp_path / "m.genad")
    assert_ok(info)
    assert "image score model, histogram equalised" in " ".join(info.stdout.split())


def test_train_on_tiles_scored_by_their_mean_scores_in_a_new_process(images, tmp_path):
    """The tiled chest X-ray recipe (docs/images.md): 9 tiles an image, mean tile score,
    and a latent bank that keeps every training tile's code."""
    _train_score_and_load_fresh(
        images, tmp_path,
        ["--model", "conv-vae", "--tile", "8", "--image-score", "model",
         "--latent-neighbors", "3", "--latent-metric", "cosine", "--set", "equalize=true",
         "--set", "tile_overlap=0.5", "--set", "tile_score=mean"],
        "d.adapter_.tile_score == 'mean' and d.adapter_.n_tiles_ == 9 and "
        "int(d.model_.latent_bank.n_codes) == 9 * 43")  # 48 train images, 5 held out
    info = genad_cli("info", tmp_path / "m.genad")
    assert_ok(info)
    assert "mean over tiles, histogram equalised" in " ".join(info.stdout.split())


def test_train_with_the_ssim_loss_scores_the_same_in_a_new_process(images, tmp_path):
    _train_score_and_load_fresh(images, tmp_path, ["--model", "conv-ae", "--loss", "ssim"],
                                "d.loss == 'ssim' and d.model_.ssim is not None")


def test_train_set_reaches_the_model_a_new_process_loads(images, tmp_path):
    _train_score_and_load_fresh(
        images, tmp_path,
        ["--model", "vaegan", "--set", "pause_discriminator_below=0.5", "--set",
         "conv_width=8", "--set", "smoothing=2"],
        "d.pause_discriminator_below == 0.5 and d.conv_width == 8 and "
        "d.adapter_.smoothing == 2 and 'd_pause' in d.history_['parts']")


@pytest.mark.parametrize("args, message", [
    (["--model", "ganomaly", "--latent-neighbors", "3"],
     "model 'ganomaly' has no latent-distance score; models with one: ae, dae, vae"),
    (["--latent-neighbors", "3", "--image-score", "top_k"],
     "--image-score top_k scores from the anomaly map"),
    (["--latent-metric", "cosine"], "--latent-metric needs --latent-neighbors K"),
    (["--model", "conv-vae", "--loss", "ssim"],
     "--loss: model 'conv-vae' has no choice of reconstruction error; models with one: "
     "conv-ae"),
    (["--set", "loss=ssim"], "--set loss: use --loss instead"),
    (["--set", "size=32"], "--set size: use --size instead"),
    (["--set", "smoothin=2"], "no parameter 'smoothin' (did you mean 'smoothing'?)"),
    (["--set", "scaling=robust"], "model 'conv-ae' has no parameter 'scaling'"),
    (["--set", "smoothing=-1"], "smoothing must be a number in [0, inf), got -1"),
])
def test_latent_options_that_cannot_work_fail_in_one_line(images, tmp_path, args, message):
    proc = genad_cli("train", images / "train", *args, "--out", tmp_path / "x.genad")
    assert proc.returncode == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x.genad").exists()


def test_members_train_apart_and_score_as_one_model_in_a_fresh_process(images, tmp_path):
    model = tmp_path / "members.genad"
    proc = genad_cli("train", images / "train", "--model", "conv-vae", "--members", "2",
                     "--epochs", "2", "--target-fpr", "0.1", "--out", model)
    assert_ok(proc)
    assert ("2 members from different random starts, scores averaged (epochs 2, 2; the "
            "figures before are the first member's)") in proc.stdout
    info = genad_cli("info", model)
    assert_ok(info)
    assert "2 members from different random starts" in " ".join(info.stdout.split())
    out = tmp_path / "scores.csv"
    assert_ok(genad_cli("score", model, images / "test", "--out", out))
    _assert_fresh_load_scores_as_csv(model, images / "test", out,
                                     check="d.n_members == 2 and len(d.model_.members) == 2")
    proc = genad_cli("train", images / "train", "--set", "n_members=2", "--out", model)
    assert proc.returncode == 1 and "--set n_members: use --members instead" in proc.stderr
