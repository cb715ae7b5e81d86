"""The HTML report of image detectors (genad.report.build_image_report) and ``genad
report`` on images: galleries, pixel metrics, generated samples, settings, errors."""

from __future__ import annotations

import base64
import copy
import html as html_lib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import genad
from genad import registry
from genad.cli import app
from genad.data.image import ImageAdapter
from genad.errors import InvalidInputError, NotFittedError
from genad.metrics import aupro, pixel_auroc
from genad.report import build_image_report, describe_threshold
from genad.report.image_report import GALLERY_SIDE, N_GENERATED, _Candidates, gallery_tile

SIDE = 20  # test images are SIDE x SIDE
SQUARE = (slice(5, 12), slice(5, 12))  # where an anomalous image has its bright square


def _normal_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60, size=(n, SIDE, SIDE), dtype=np.uint8)


def _fit(name: str) -> genad.Detector:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = registry.load_class(name)
        return cls(adapter=ImageAdapter(size=16),
                   **registry.preset(name).test_params()).fit(_normal_images(64, 0))


@pytest.fixture(scope="module")
def conv_ae() -> genad.Detector:
    return _fit("conv-ae")


@pytest.fixture(scope="module")
def conv_vae() -> genad.Detector:
    return _fit("conv-vae")


@pytest.fixture(scope="module")
def labelled() -> tuple[np.ndarray, np.ndarray]:
    """16 images; the first 4 (label 1) carry a bright square."""
    X = _normal_images(16, 1)
    X[:4][:, SQUARE[0], SQUARE[1]] = 255
    return X, np.r_[np.ones(4), np.zeros(12)].astype(int)


def _quiet_report(*args, **kwargs) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_image_report(*args, **kwargs)


@pytest.fixture(scope="module")
def report_html(conv_ae, labelled, tmp_path_factory) -> str:
    X, y = labelled
    out = tmp_path_factory.mktemp("imgreport") / "nested" / "report.html"
    path = _quiet_report(conv_ae, X, y, out=out, gallery_n=4)
    assert isinstance(path, Path) and path == out
    return path.read_text(encoding="utf-8")


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


def _captions(section: str) -> list[tuple[int, str]]:
    """``(rank, name)`` of each gallery tile of a section."""
    return [(int(r), n) for r, n in re.findall(r'<div class="name"[^>]*>#(\d+) ([^<]+)</div>',
                                              section)]


def _tile_images(section: str) -> list[Image.Image]:
    pattern = r'<figure class="tile">\s*<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"'
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(pattern, section)]


def _names(order) -> list[str]:
    return [f"image {int(i)}" for i in order]


# --- the page ---------------------------------------------------------------------------

def test_sections_kpis_and_self_contained(report_html, conv_ae):
    for sid in ("summary", "top", "false-alarms", "missed", "alerts", "operating", "ranking",
                "distribution", "samples", "training", "settings"):
        assert f'id="{sid}"' in report_html
    for text in ("AUROC", "AUPRC", "Flagged", "Threshold", "ConvAutoEncoder", "Most anomalous"):
        assert text in report_html
    assert "Pixel AUROC" not in report_html  # arrays carry no masks
    assert describe_threshold(conv_ae) in html_lib.unescape(report_html)
    assert "normal images score above it" in describe_threshold(conv_ae)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", report_html)
    assert "<script" not in report_html.lower() and "<link" not in report_html.lower()


def test_galleries_hold_the_right_images_in_order(report_html, conv_ae, labelled):
    X, y = labelled
    scores = conv_ae.anomaly_score(X)
    top = np.argsort(-scores, kind="stable")
    normals = top[y[top] == 0]
    rising = np.argsort(scores, kind="stable")
    anomalies = rising[y[rising] == 1]
    for sid, expected in (("top", top), ("false-alarms", normals), ("missed", anomalies)):
        captions = _captions(_section(report_html, sid))
        assert [r for r, _ in captions] == [1, 2, 3, 4]
        assert [n for _, n in captions] == _names(expected[:4]), sid
    # the first gallery's captions give each image's score and p-value
    section = _section(report_html, "top")
    first = int(top[0])
    assert f"score <b>{genad.report._common.num(scores[first])}</b>" in section
    p = conv_ae.p_value(X[first:first + 1])[0]
    assert f"p-value <b>{genad.report._common.num(p, 2)}</b>" in section


def test_a_tile_is_the_image_then_its_overlay(report_html, conv_ae, labelled):
    X, _ = labelled
    tiles = _tile_images(_section(report_html, "top"))
    assert len(tiles) == 4
    factor = 128 // SIDE  # small images are enlarged by a whole factor, pixels kept
    for tile in tiles:
        assert tile.size == ((2 * SIDE + 4) * factor, SIDE * factor)
    # the left picture is the image itself (gray, enlarged with nearest neighbours)
    name = _captions(_section(report_html, "top"))[0][1]
    i = int(name.split()[-1])
    left = np.asarray(tiles[0].convert("L"))[::factor, ::factor][:, :SIDE]
    np.testing.assert_allclose(left, X[i], atol=1)


def test_without_labels_only_the_top_gallery(conv_ae, labelled, tmp_path):
    X, _ = labelled
    html = _quiet_report(conv_ae, X, out=tmp_path / "r.html", gallery_n=3).read_text("utf-8")
    assert 'id="false-alarms"' not in html and 'id="missed"' not in html
    assert len(_captions(_section(html, "top"))) == 3
    assert "No labels were given" in html
    assert "Labels</td><td>none given" in html


def test_large_images_are_scaled_down(conv_ae, tmp_path):
    X = np.random.default_rng(3).integers(0, 60, size=(3, 300, 600), dtype=np.uint8)
    html = _quiet_report(conv_ae, X, out=tmp_path / "r.html", gallery_n=3).read_text("utf-8")
    for tile in _tile_images(_section(html, "top")):
        assert tile.size == (2 * GALLERY_SIDE + 4, GALLERY_SIDE // 2)
    assert "all 300 \u00d7 600 px" in html


def test_streaming_keeps_only_gallery_candidates(conv_ae, labelled, tmp_path, monkeypatch):
    """Scored 3 images at a time, the galleries are those of the whole set."""
    X, y = labelled
    monkeypatch.setattr(conv_ae.adapter_, "score_chunk_size", 3)
    html = _quiet_report(conv_ae, X, y, out=tmp_path / "r.html", gallery_n=2).read_text("utf-8")
    monkeypatch.undo()
    scores = conv_ae.anomaly_score(X)
    top = np.argsort(-scores, kind="stable")
    assert [n for _, n in _captions(_section(html, "top"))] == _names(top[:2])
    assert [n for _, n in _captions(_section(html, "false-alarms"))] == _names(
        top[y[top] == 0][:2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_candidates_never_drop_a_final_gallery_member(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=50), 1)  # ties too
    labels = rng.integers(0, 2, size=50)
    cand = _Candidates(5, labels)
    final = cand.galleries(scores)
    wanted = {int(i) for idx in final.values() for i in idx}
    kept: set[int] = set()
    for end in range(7, 57, 7):
        end = min(end, 50)
        kept = cand.keep(scores[:end]) & (kept | set(range(end - 7, end)))
        assert len(kept) <= 15
    assert wanted <= kept
    assert list(final["top"]) == list(np.argsort(-scores, kind="stable")[:5])


def test_the_model_runs_once(conv_ae, labelled, tmp_path, monkeypatch):
    X, y = labelled
    calls = [0]
    original = conv_ae._scores_and_maps

    def counted(samples):
        calls[0] += 1
        return original(samples)

    monkeypatch.setattr(conv_ae, "_scores_and_maps", counted)
    conv_ae.anomaly_map(X)
    one_pass = calls[0]
    calls[0] = 0
    _quiet_report(conv_ae, X, y, out=tmp_path / "r.html")
    assert calls[0] == one_pass


# --- masks and pixel metrics -------------------------------------------------------------

@pytest.fixture(scope="module")
def manifest(labelled, tmp_path_factory) -> Path:
    """PNG images with a label column and masks (anomalies' squares marked)."""
    X, y = labelled
    root = tmp_path_factory.mktemp("manifest")
    rows = []
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        Image.fromarray(image).save(root / f"img{i:02d}.png")
        mask_path = ""
        if label:
            mask = np.zeros((SIDE, SIDE), dtype=np.uint8)
            mask[SQUARE] = 255
            Image.fromarray(mask).save(root / f"mask{i:02d}.png")
            mask_path = f"mask{i:02d}.png"
        rows.append({"path": f"img{i:02d}.png", "label": int(label), "mask_path": mask_path})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_masks_give_pixel_metrics_and_outlines(conv_ae, labelled, manifest, tmp_path):
    X, y = labelled
    html = _quiet_report(conv_ae, manifest, out=tmp_path / "r.html",
                         gallery_n=4).read_text("utf-8")
    masks = np.zeros((len(X), SIDE, SIDE), dtype=bool)
    masks[:4][:, SQUARE[0], SQUARE[1]] = True
    maps = conv_ae.anomaly_map(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_auroc = pixel_auroc(masks, maps)
        expected_aupro = aupro(masks, maps, fpr_limit=0.3)
    kpis = html[html.index('<div class="kpis">'):html.index('<section id="summary">')]
    assert re.search(rf"Pixel AUROC</div><div class=\"value\">{expected_auroc:.3f}<", kpis)
    assert re.search(rf"AUPRO</div><div class=\"value\">{expected_aupro:.3f}<", kpis)
    assert "4 images with a marked defect" in html
    assert "manifest.csv" in html.split("</header>")[0]
    # labels came from the manifest: the missed-anomaly tiles carry the defect outline
    missed = _section(html, "missed")
    assert len(_captions(missed)) == 4 and "defect mask" in missed
    green = np.array([0, 230, 89])
    for tile in _tile_images(missed):
        px = np.asarray(tile.convert("RGB")).astype(int)
        right = px[:, px.shape[1] // 2:]
        assert (np.abs(right - green).sum(axis=2) <= 3).any()
        left = px[:, : px.shape[1] // 2 - 4]
        assert not (np.abs(left - green).sum(axis=2) <= 3).any()
    for tile in _tile_images(_section(html, "false-alarms")):  # normals: no outline
        px = np.asarray(tile.convert("RGB")).astype(int)
        assert not (np.abs(px - green).sum(axis=2) <= 3).any()


def test_masks_without_defects_say_why_there_is_no_pixel_metric(conv_ae, labelled, tmp_path):
    X, _ = labelled
    root = tmp_path / "m"
    root.mkdir()
    blank = np.zeros((SIDE, SIDE), dtype=np.uint8)
    Image.fromarray(blank).save(root / "mask.png")
    for i in range(3):
        Image.fromarray(X[4 + i]).save(root / f"{i}.png")
    pd.DataFrame({"path": [f"{i}.png" for i in range(3)], "mask_path": ["mask.png"] * 3}
                 ).to_csv(root / "m.csv", index=False)
    html = _quiet_report(conv_ae, root / "m.csv", out=tmp_path / "r.html").read_text("utf-8")
    assert "Pixel AUROC" not in html
    assert "none marks a\n      defect" in html


# --- generated samples, training history --------------------------------------------------

def test_samples_note_when_the_model_cannot_generate(conv_ae, labelled, tmp_path,
                                                      monkeypatch):
    X, y = labelled

    def cannot(n, *, random_state=0):
        raise InvalidInputError("ConvAutoEncoder on image data cannot generate samples")

    monkeypatch.setattr(conv_ae, "sample", cannot)
    html = _quiet_report(conv_ae, X, y, out=tmp_path / "r.html").read_text("utf-8")
    samples = _section(html, "samples")
    assert "No generated images: ConvAutoEncoder on image data cannot generate" in samples
    assert "<img" not in samples


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 3), (200, 120)])
def test_samples_sheet(conv_vae, labelled, tmp_path, monkeypatch, shape):
    X, y = labelled
    asked = []

    def sample(n, *, random_state=0):
        asked.append((n, random_state))
        return np.random.default_rng(0).random((n, *shape))

    monkeypatch.setattr(conv_vae, "sample", sample)
    html = _quiet_report(conv_vae, X, y, out=tmp_path / "r.html").read_text("utf-8")
    assert asked == [(N_GENERATED, 0)]
    uri = re.search(r'<figure class="samples"><img src="data:image/png;base64,([^"]+)"',
                    _section(html, "samples")).group(1)
    sheet = Image.open(io.BytesIO(base64.b64decode(uri)))
    h, w = shape[:2]
    scale = 96 / max(h, w)
    th, tw = (h * int(scale), w * int(scale)) if scale >= 2 else (round(h * scale),
                                                                     round(w * scale))
    assert sheet.size == (8 * tw + 7 * 2, 8 * th + 7 * 2)


def test_training_section_lists_every_loss_part(conv_vae, labelled, tmp_path, monkeypatch):
    X, y = labelled
    html = _quiet_report(conv_vae, X, y, out=tmp_path / "r.html").read_text("utf-8")
    training = _section(html, "training")
    assert "parts of the training loss\n      (kl, nll)" in training
    assert training.count("data:image/png;base64,") == 1
    history = dict(conv_vae.history_)
    epochs = len(history["train_loss"])
    history["parts"] = {"d_loss": [0.7] * epochs, "g_loss": [1.5] * epochs}
    monkeypatch.setattr(conv_vae, "history_", history)
    html = _quiet_report(conv_vae, X, y, out=tmp_path / "r.html").read_text("utf-8")
    assert "(d_loss, g_loss)" in _section(html, "training")


def test_settings_and_network(report_html, conv_ae):
    settings = _section(report_html, "settings")
    assert "16 \u00d7 16 px (height \u00d7 width)" in settings
    assert "1 (gray)" in settings and "stretch" in settings
    assert "none (the whole image is one input)" in settings
    assert "scores.csv" in settings
    latent = conv_ae.latent_dim_
    assert f"2-D conv, 1 \u00d7 16 \u00d7 16 \u2192 latent {latent}, first conv 4 channels" in \
        _section(report_html, "summary")


def test_settings_say_whether_images_are_equalised(report_html, conv_ae):
    from genad.report.image_report import _settings

    assert ("Histogram equalisation", "none") in _settings(conv_ae.adapter_)
    assert "Histogram equalisation" in _section(report_html, "settings")
    equalised = copy.deepcopy(conv_ae.adapter_)
    equalised.equalize = True
    assert ("Histogram equalisation", "per image") in _settings(equalised)
    equalised.set_params(tile=8, tile_score="mean", score="model")
    assert ("Image score", "the model's own score (the mean over tiles)") in _settings(equalised)


def test_scores_download(report_html, conv_ae, labelled):
    X, y = labelled
    uri = re.search(r'download="scores.csv" href="data:text/csv;base64,([^"]+)"', report_html)
    table = pd.read_csv(io.BytesIO(base64.b64decode(uri.group(1))))
    scores = conv_ae.anomaly_score(X)
    order = np.argsort(-scores, kind="stable")
    assert table["image"].tolist() == _names(order)
    np.testing.assert_allclose(table["anomaly_score"], scores[order])
    assert table["label"].tolist() == y[order].tolist()
    assert table["is_anomaly"].tolist() == (scores[order] > conv_ae.threshold_).astype(
        int).tolist()


def _decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",")[1]))).convert("RGB"))


def test_gallery_tile_uses_the_fixed_colour_scale():
    image = np.full((4, 4), 0.5)
    amap = np.zeros((4, 4))
    amap[1, 2] = 3.0
    tile = _decode(gallery_tile(image, amap, vmin=1.0, vmax=3.0))
    f = 128 // 4  # enlarged by a whole factor; 4 px of padding between the two pictures
    assert tile.shape == (4 * f, (4 + 4 + 4) * f, 3)
    left, right = tile[::f, :4 * f:f], tile[::f, 8 * f::f]
    np.testing.assert_array_equal(left, np.full((4, 4, 3), 128))
    hot = np.zeros((4, 4), dtype=bool)
    hot[1, 2] = True
    np.testing.assert_array_equal(right[~hot], left[~hot])  # below vmin: the image itself
    assert not np.array_equal(right[hot], left[hot])
    # a map everywhere below vmin (a normal image) draws no colour at all
    cold = _decode(gallery_tile(image, np.full((4, 4), 0.9), vmin=1.0, vmax=3.0))
    np.testing.assert_array_equal(cold[:, :4 * f], cold[:, 8 * f:])


# --- errors -----------------------------------------------------------------------------

def test_bad_inputs(conv_ae, labelled, tmp_path):
    X, y = labelled
    with pytest.raises(NotFittedError):
        build_image_report(genad.ConvAutoEncoder(), X, out=tmp_path / "r.html")
    for bad in (0, -1, True, 2.5):
        with pytest.raises(InvalidInputError, match="gallery_n"):
            build_image_report(conv_ae, X, out=tmp_path / "r.html", gallery_n=bad)
    with pytest.raises(InvalidInputError, match="16 labels but X has 15 images"):
        build_image_report(conv_ae, X[:15], y, out=tmp_path / "r.html")
    with pytest.raises(InvalidInputError, match="0 \\(normal\\) or 1"):
        build_image_report(conv_ae, X, np.full(16, 2), out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_a_table_detector_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = genad.AutoEncoder(epochs=1, random_state=0, verbose=0, device="cpu").fit(
            rng.normal(size=(100, 3)))
    with pytest.raises(InvalidInputError, match="build_report for tables"):
        build_image_report(det, rng.normal(size=(5, 3)), out=tmp_path / "r.html")


# --- the command line ------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture(scope="module")
def image_folder(labelled, tmp_path_factory) -> Path:
    """Class folders: good/ (normal) and square/ (anomalies)."""
    X, y = labelled
    root = tmp_path_factory.mktemp("folder")
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        sub = root / ("square" if label else "good")
        sub.mkdir(exist_ok=True)
        Image.fromarray(image).save(sub / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def model_file(conv_ae, tmp_path_factory) -> Path:
    return Path(conv_ae.save(tmp_path_factory.mktemp("model") / "m.genad"))


def test_cli_report_on_an_image_folder(model_file, image_folder, tmp_path):
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(model_file), str(image_folder), "--out",
                                 str(out), "--top-n", "3", "--title", "Bottles"])
    assert result.exit_code == 0, result.output
    html = out.read_text("utf-8")
    assert "<title>Bottles</title>" in html
    for sid in ("top", "false-alarms", "missed"):  # labels from the class folders
        assert len(_captions(_section(html, sid))) == 3
    assert all(name.startswith("square/") for _, name in _captions(_section(html, "missed")))
    assert f"<b>{image_folder.name}</b>" in html.split("</header>")[0]


def test_cli_report_split_of_a_manifest(model_file, manifest, tmp_path):
    frame = pd.read_csv(manifest)
    frame["split"] = ["test" if i % 2 else "train" for i in range(len(frame))]
    path = manifest.with_name("split.csv")
    frame.to_csv(path, index=False)
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(model_file), str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text("utf-8")
    assert "8 images of <b>split.csv (split test)</b>" in html
    result = runner.invoke(app, ["report", str(model_file), str(path), "--out", str(out),
                                 "--split", "nope"])
    assert result.exit_code != 0 and "no row of" in result.stderr


def test_cli_score_of_one_image_file_counts_it_in_the_singular(model_file, image_folder,
                                                              tmp_path):
    one = image_folder / "square" / "00.png"
    out = tmp_path / "one.csv"
    result = runner.invoke(app, ["score", str(model_file), str(one), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scored 1 image; flagged ")
    table = pd.read_csv(out)
    assert len(table) == 1 and table["image"].iloc[0].endswith("00.png")
    n_overlays = int(table["is_anomaly"].iloc[0])
    assert f"wrote {n_overlays} overlay{'' if n_overlays == 1 else 's'} to " in result.stdout


@pytest.mark.parametrize("option", [["--label-column", "label"], ["--id-column", "id"]])
def test_cli_table_options_are_refused_for_images(model_file, image_folder, tmp_path, option):
    result = runner.invoke(app, ["report", str(model_file), str(image_folder), "--out",
                                 str(tmp_path / "r.html"), *option])
    assert result.exit_code != 0
    assert "are for tables" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_cli_split_is_refused_for_tables(tmp_path):
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = genad.AutoEncoder(epochs=1, random_state=0, verbose=0, device="cpu").fit(
            pd.DataFrame(rng.normal(size=(100, 3)), columns=list("abc")))
    model = det.save(tmp_path / "t.genad")
    pd.DataFrame(rng.normal(size=(10, 3)), columns=list("abc")).to_csv(tmp_path / "t.csv",
                                                                       index=False)
    result = runner.invoke(app, ["report", str(model), str(tmp_path / "t.csv"), "--out",
                                 str(tmp_path / "r.html"), "--split", "test"])
    assert result.exit_code != 0 and "--split is for image manifests" in result.stderr



@pytest.mark.parametrize("name", registry.names("image"))
def test_each_image_model_says_what_its_network_and_its_map_are(name, labelled, tmp_path):
    """The summary describes the network the fit built (a GAN on images is a conv net, not
    the MLP of its table preset), the gallery says what a hot spot means for this model,
    and the subtitle holds the class's whole summary sentence, not its first source line."""
    det = _fit(name)
    X, y = labelled
    html = _quiet_report(det, X, y, out=tmp_path / "r.html", gallery_n=2).read_text("utf-8")
    summary = _section(html, "summary")
    assert "1 \u00d7 16 \u00d7 16 \u2192 " in summary and "MLP" not in summary
    if name == "draem":
        assert ("segmenting U-Net, 1 \u00d7 16 \u00d7 16 \u2192 defect map, 4 channels at the "
                "first of 4 levels") in summary
        assert "latent" not in summary
    else:
        width = det.get_params()["conv_width"]
        assert (f"2-D conv, 1 \u00d7 16 \u00d7 16 \u2192 latent {det.latent_dim_}, first conv "
                f"{width} channels") in summary
    top = " ".join(_section(html, "top").split())
    assert f"the hotter the colour, {type(det).map_meaning}, compared with" in top
    assert ("defect" in type(det).map_meaning) == (name == "draem")
    from markupsafe import escape

    from genad.report._common import _first_paragraph

    subtitle = _first_paragraph(type(det).__doc__)
    assert subtitle.endswith(".") and str(escape(subtitle)) in " ".join(html.split())
