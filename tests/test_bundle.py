"""The one-file bundle: safetensors + JSON document, no pickle, tamper detection."""

from __future__ import annotations

import ast
import inspect
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

import genad
import genad.bundle
from genad.bundle import FORMAT_VERSION, _document_digest, read_document
from genad.errors import ModelFormatError


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory, fitted_factory):
    path = tmp_path_factory.mktemp("bundle") / "model.genad"
    fitted_factory("ae").save(path)
    return path


@pytest.fixture
def bundle_bytes(bundle_path):
    return bundle_path.read_bytes()


def _header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def _metadata_and_tensors(path):
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata()
    return meta, load_file(str(path), device="cpu")


def _rewrite(src, dst, edit):
    """Rewrite a bundle with its JSON document changed by ``edit`` (tensors kept)."""
    meta, tensors = _metadata_and_tensors(src)
    doc = json.loads(meta["genad"])
    edit(doc)
    save_file(tensors, str(dst), metadata={"genad": json.dumps(doc)})
    return dst


# ------------------------------------------------------------------ layout
def test_bundle_is_a_safetensors_file_with_the_genad_document(bundle_path, table,
                                                              fitted_factory):
    det = fitted_factory("ae")
    meta, tensors = _metadata_and_tensors(bundle_path)
    assert set(meta) == {"genad"}
    doc = json.loads(meta["genad"])
    for key in ("genad_format", "detector", "params", "adapter", "history", "versions",
                "tensor_sha256"):
        assert key in doc, key
    assert doc["genad_format"] == FORMAT_VERSION
    assert doc["detector"] == "AutoEncoder"
    assert doc["params"] == json.loads(json.dumps(det.get_params()))
    assert doc["fitted"]["threshold_"] == det.threshold_
    assert doc["history"]["train_loss"] == det.history_["train_loss"]
    assert set(doc["versions"]) >= {"genad", "torch", "numpy", "python"}
    assert doc["versions"]["genad"] == genad.__version__
    assert len(doc["tensor_sha256"]) == 64
    assert [c["name"] for c in doc["adapter"]["columns"]] == list(table.columns)
    # tensors: weights, scaling statistics, calibration scores
    assert any(k.startswith("model.") for k in tensors)
    assert {"adapter.center", "adapter.scale", "calibration.scores"} <= set(tensors)
    np.testing.assert_array_equal(tensors["calibration.scores"].numpy(),
                                  det.calibration_scores_)
    for k, v in det.model_.state_dict().items():
        assert torch.equal(tensors[f"model.{k}"], v)


def test_read_document_matches_the_metadata(bundle_path):
    meta, _ = _metadata_and_tensors(bundle_path)
    assert read_document(bundle_path) == json.loads(meta["genad"])


def test_bundle_holds_no_pickle(bundle_bytes):
    n = _header_length(bundle_bytes)
    header = json.loads(bundle_bytes[8:8 + n])
    # every entry but the metadata is a plain tensor description
    for name, entry in header.items():
        if name != "__metadata__":
            assert set(entry) == {"dtype", "shape", "data_offsets"}
    # no pickle protocol marker at the start, no zip container (torch.save format)
    assert bundle_bytes[:2] != b"\x80\x04" and not bundle_bytes.startswith(b"PK")


_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal",
                   "shelve"}


def _unsafe_uses(path):
    """Imports of pickle-like modules and calls of torch.load / eval / exec in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in _UNSAFE_MODULES:
                found.append(node.module)
            if node.module == "torch" and any(a.name == "load" for a in node.names):
                found.append("from torch import load")
        elif isinstance(node, ast.Attribute) and node.attr == "load":
            if isinstance(node.value, ast.Name) and node.value.id == "torch":
                found.append("torch.load")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("eval", "exec"):
                found.append(node.func.id)
    return found


def test_package_never_imports_pickle_or_calls_torch_load():
    package = Path(genad.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert Path(genad.bundle.__file__) in files
    offenders = {str(f.relative_to(package)): u for f in files if (u := _unsafe_uses(f))}
    assert offenders == {}


def test_unsafe_use_detector_catches_offenders(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport torch\nx = torch.load('m')\neval('1')\n")
    assert sorted(_unsafe_uses(bad)) == ["eval", "pickle", "torch.load"]


def test_bundle_source_mentions_no_loader_but_safetensors():
    code = inspect.getsource(genad.bundle)
    assert "safetensors" in code
    assert "torch.load" not in code
    assert "import pickle" not in code


def test_loading_does_not_unpickle(bundle_path, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading a bundle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    det = genad.load(bundle_path)
    assert isinstance(det, genad.AutoEncoder)


def test_loads_on_cpu(bundle_path):
    det = genad.load(bundle_path)
    assert all(p.device.type == "cpu" for p in det.model_.parameters())
    assert all(b.device.type == "cpu" for b in det.model_.buffers())
    assert not det.model_.training


def test_save_appends_suffix_and_creates_folders(tmp_path, fitted_factory):
    path = fitted_factory("ae").save(tmp_path / "deep" / "dir" / "m")
    assert path == tmp_path / "deep" / "dir" / "m.genad"
    assert path.exists()
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("name", sorted(genad.MODELS))
def test_every_model_round_trips(name, tmp_path, table, fitted_factory):
    det = fitted_factory(name)
    loaded = genad.load(det.save(tmp_path / f"{name}.genad"))
    np.testing.assert_array_equal(loaded.anomaly_score(table), det.anomaly_score(table))
    np.testing.assert_array_equal(loaded.predict(table), det.predict(table))


def test_vae_score_method_survives_the_round_trip(make_detector, table, tmp_path):
    det = make_detector("vae", score_method="reconstruction_probability", n_samples=3, epochs=2)
    det.fit(table)
    loaded = genad.load(det.save(tmp_path / "vae"))
    assert loaded.score_method == "reconstruction_probability"
    assert loaded.model_.score_method == "reconstruction_probability"
    np.testing.assert_array_equal(loaded.anomaly_score(table), det.anomaly_score(table))


def test_calibrated_threshold_survives_the_round_trip(fitted_copy, tmp_path, table):
    fitted_copy.calibrate(target_fpr=0.3)
    loaded = genad.load(fitted_copy.save(tmp_path / "m"))
    assert loaded.threshold_ == fitted_copy.threshold_
    assert loaded.threshold_method_ == "target_fpr" and loaded.threshold_setting_ == 0.3
    np.testing.assert_array_equal(loaded.predict(table), fitted_copy.predict(table))


# ------------------------------------------------------------------ bad files
@pytest.mark.parametrize("where", ["4", "8", "header/2", "header-1", "data/2", "end-1"])
def test_truncated_file_raises(bundle_bytes, tmp_path, where):
    n = _header_length(bundle_bytes)
    cut = {"4": 4, "8": 8, "header/2": 8 + n // 2, "header-1": 8 + n - 1,
           "data/2": 8 + n + (len(bundle_bytes) - 8 - n) // 2,
           "end-1": len(bundle_bytes) - 1}[where]
    path = tmp_path / "cut.genad"
    path.write_bytes(bundle_bytes[:cut])
    with pytest.raises(ModelFormatError, match="cut.genad"):
        genad.load(path)


@pytest.mark.parametrize("fraction", [0.0, 0.37, 0.99])
def test_flipped_tensor_byte_raises(bundle_bytes, tmp_path, fraction):
    n = _header_length(bundle_bytes)
    start = 8 + n
    i = start + int(fraction * (len(bundle_bytes) - start - 1))
    data = bytearray(bundle_bytes)
    data[i] ^= 0x01
    path = tmp_path / "flipped.genad"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="modified"):
        genad.load(path)


def test_tampered_threshold_raises(bundle_path, tmp_path):
    def edit(doc):
        doc["fitted"]["threshold_"] = doc["fitted"]["threshold_"] * 10

    path = _rewrite(bundle_path, tmp_path / "tampered.genad", edit)
    with pytest.raises(ModelFormatError, match="modified"):
        genad.load(path)


def test_tampered_params_raise(bundle_path, tmp_path):
    def edit(doc):
        doc["params"]["latent_dim"] = 3

    with pytest.raises(ModelFormatError, match="modified"):
        genad.load(_rewrite(bundle_path, tmp_path / "p.genad", edit))


def test_replaced_tensor_with_consistent_document_still_raises(bundle_path, tmp_path):
    meta, tensors = _metadata_and_tensors(bundle_path)
    tensors["calibration.scores"] = tensors["calibration.scores"] * 0
    path = tmp_path / "swap.genad"
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(ModelFormatError, match="weights were modified"):
        genad.load(path)


def test_future_format_raises(bundle_path, tmp_path):
    def edit(doc):
        doc["genad_format"] = FORMAT_VERSION + 1
        doc["document_sha256"] = _document_digest(doc)  # a genuine newer file

    path = _rewrite(bundle_path, tmp_path / "future.genad", edit)
    with pytest.raises(ModelFormatError, match=r"format 2.*upgrade genad"):
        genad.load(path)


def test_missing_format_version_raises(bundle_path, tmp_path):
    def edit(doc):
        del doc["genad_format"]

    with pytest.raises(ModelFormatError, match="genad_format"):
        genad.load(_rewrite(bundle_path, tmp_path / "nofmt.genad", edit))


def test_corrupt_json_document_raises(bundle_path, tmp_path):
    _, tensors = _metadata_and_tensors(bundle_path)
    path = tmp_path / "json.genad"
    save_file(tensors, str(path), metadata={"genad": "{not json"})
    with pytest.raises(ModelFormatError, match="corrupt"):
        genad.load(path)


def test_unknown_detector_class_raises(bundle_path, tmp_path):
    def edit(doc):
        doc["detector"] = "os.system"
        doc["document_sha256"] = _document_digest(doc)

    with pytest.raises(ModelFormatError, match="unknown detector class"):
        genad.load(_rewrite(bundle_path, tmp_path / "cls.genad", edit))


def test_non_genad_safetensors_file_raises(tmp_path):
    path = tmp_path / "other.safetensors"
    save_numpy({"w": np.zeros((2, 2), np.float32)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFormatError, match="not a genad model"):
        genad.load(path)


def test_missing_path_raises(tmp_path):
    with pytest.raises(ModelFormatError, match="not found"):
        genad.load(tmp_path / "nope.genad")
    with pytest.raises(ModelFormatError, match="folder"):
        genad.load(tmp_path)


@pytest.mark.parametrize("size", [0, 7, 100, 5000])
def test_random_bytes_raise(tmp_path, size):
    path = tmp_path / "random.genad"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    with pytest.raises(ModelFormatError):
        genad.load(path)


def test_a_pickle_file_is_refused_without_being_executed(tmp_path):
    import pickle

    path = tmp_path / "evil.genad"
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelFormatError):
        genad.load(path)
    assert not marker.exists()
