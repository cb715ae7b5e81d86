"""The one-file bundle: safetensors + JSON document, no pickle, tamper detection."""

from __future__ import annotations

import ast
import inspect
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

import genad
import genad.bundle
from genad.bundle import FORMAT_VERSION, _document_digest, read_document
from genad.errors import GenadError, InvalidInputError, ModelFormatError, OutputError
from tests.conftest import MODEL_NAMES


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
    assert doc["adapter_kind"] == "tabular"
    assert doc["sample_shape"] == list(det.sample_shape_)
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


@pytest.mark.parametrize("name", sorted(MODEL_NAMES))
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
    with pytest.raises(ModelFormatError, match=rf"format {FORMAT_VERSION + 1}.*upgrade genad"):
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


# ------------------------------------------------- edits with recomputed digests
def _forge(src, dst, edit=None, edit_tensors=None):
    """The "recomputed digests" attack: edit a bundle's document and/or tensors, then
    recompute both digests, so only the schema and shape checks can catch the edit."""
    meta, tensors = _metadata_and_tensors(src)
    doc = json.loads(meta["genad"])
    if edit_tensors is not None:
        edit_tensors(tensors)
    if edit is not None:
        edit(doc)
    doc["tensor_sha256"] = genad.bundle._tensor_digest(tensors)
    doc["document_sha256"] = _document_digest(doc)
    save_file(tensors, str(dst), metadata={"genad": json.dumps(doc)})
    return dst


def _set(where, value):
    """An edit setting ``doc[k1][k2]... = value`` for a dotted path (``columns.0`` indexes)."""
    *parents, last = where.split(".")

    def edit(doc):
        node = doc
        for k in parents:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[int(last) if isinstance(node, list) else last] = value

    return edit


def test_forge_helper_keeps_an_unedited_bundle_loadable(bundle_path, tmp_path, table):
    det = genad.load(_forge(bundle_path, tmp_path / "same.genad"))
    np.testing.assert_array_equal(det.anomaly_score(table), genad.load(bundle_path)
                                  .anomaly_score(table))


def test_nan_threshold_is_refused(bundle_path, tmp_path):
    path = _forge(bundle_path, tmp_path / "nan.genad", _set("fitted.threshold_", float("nan")))
    with pytest.raises(ModelFormatError, match=r"nan\.genad.*fitted\.threshold_.*finite"):
        genad.load(path)


@pytest.mark.parametrize("name", ["anomaly_score", "model_", "calibrate", "extra_"])
def test_unknown_fitted_key_is_refused_not_set(bundle_path, tmp_path, name):
    path = _forge(bundle_path, tmp_path / "extra.genad", _set(f"fitted.{name}", 1))
    with pytest.raises(ModelFormatError, match=rf"fitted\.{name} is not a known field"):
        genad.load(path)


@pytest.mark.parametrize("where", ["evil", "adapter.evil", "adapter.params.evil",
                                   "adapter.columns.0.evil", "history.evil", "versions.evil",
                                   "signature"])
def test_unknown_keys_are_refused_at_every_level(bundle_path, tmp_path, where):
    path = _forge(bundle_path, tmp_path / "key.genad", _set(where, 1))
    name = re.escape(where.replace(".0.", "[0]."))
    with pytest.raises(ModelFormatError, match=name):
        genad.load(path)


@pytest.mark.parametrize("name,change", [
    ("center", lambda t: torch.cat([t, t])),
    ("center", lambda t: t[:1]),
    ("scale", lambda t: torch.cat([t, t[:1]])),
])
def test_adapter_arrays_of_the_wrong_length_are_refused(bundle_path, tmp_path, name, change):
    def edit_tensors(tensors):
        tensors[f"adapter.{name}"] = change(tensors[f"adapter.{name}"]).contiguous()

    path = _forge(bundle_path, tmp_path / "len.genad", edit_tensors=edit_tensors)
    with pytest.raises(ModelFormatError, match=rf"adapter\.{name}.*shape"):
        genad.load(path)


@pytest.mark.parametrize("where", ["adapter.params.scaling", "params.scaling",
                                   "adapter.params.missing", "params.missing"])
def test_unknown_scaling_or_missing_policy_is_refused(bundle_path, tmp_path, where):
    path = _forge(bundle_path, tmp_path / "evil.genad", _set(where, "evil"))
    with pytest.raises(ModelFormatError, match=rf"{re.escape(where)} must be '"):
        genad.load(path)


@pytest.mark.parametrize("version", [-1, 0, True, 1.0, "1", None])
def test_format_version_must_be_a_known_positive_integer(bundle_path, tmp_path, version):
    path = _forge(bundle_path, tmp_path / "fmt.genad", _set("genad_format", version))
    with pytest.raises(ModelFormatError, match="genad_format"):
        genad.load(path)
    with pytest.raises(ModelFormatError, match="genad_format"):
        read_document(path)


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


@pytest.mark.parametrize("hidden", [[20000, 20000], [1] * 100_000])
def test_a_huge_network_is_refused_before_anything_is_allocated(bundle_path, tmp_path,
                                                                monkeypatch, hidden):
    """A 5 KB file claiming a 20000 x 20000 network (or 100,000 layers) is refused from
    the tensor header, before any network is built outside the meta device."""
    def edit(doc):
        doc["fitted"]["hidden_sizes_"] = hidden
        doc["params"]["hidden_sizes"] = hidden

    path = _forge(bundle_path, tmp_path / "huge.genad", edit)
    assert path.stat().st_size < 2_000_000
    builds = []
    original = genad.AutoEncoder._build_model

    def spy(self, n_features):
        device = torch.get_default_device().type
        builds.append(device)
        if device != "meta":
            raise AssertionError("a network was built before the tensor shapes were checked")
        return original(self, n_features)

    monkeypatch.setattr(genad.AutoEncoder, "_build_model", spy)
    before = _rss_mb()
    with pytest.raises(ModelFormatError, match="huge.genad"):
        genad.load(path)
    assert "cpu" not in builds
    assert _rss_mb() - before < 500  # 20000 x 20000 float32 weights alone are 1.6 GB


@pytest.mark.parametrize("text", ["[]", "null", '"a string"', "42", "[" * 100_000 + "]" * 100_000,
                                  '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_a_document_that_is_not_an_object_is_refused(bundle_path, tmp_path, text):
    _, tensors = _metadata_and_tensors(bundle_path)
    path = tmp_path / "shape.genad"
    save_file(tensors, str(path), metadata={"genad": text})
    with pytest.raises(ModelFormatError, match="shape.genad.*corrupt"):
        genad.load(path)
    with pytest.raises(ModelFormatError):
        read_document(path)


_NAN = float("nan")


@pytest.mark.parametrize("where,value,message", [
    ("fitted.threshold_", float("inf"), "finite"),
    ("fitted.threshold_", "1.0", "finite"),
    ("fitted.threshold_", None, "finite"),
    ("fitted.threshold_method_", "evil", "one of"),
    ("fitted.threshold_setting_", 2.0, r"in \(0, 1\)"),
    ("fitted.hidden_sizes_", [0], "integer"),
    ("fitted.hidden_sizes_", "16", "a list"),
    ("fitted.hidden_sizes_", [1.5], "integer"),
    ("fitted.latent_dim_", True, "integer"),
    ("fitted.latent_dim_", 0, "integer"),
    ("fitted.n_features_in_", 99, "fitted.n_features_in_ is 99 but the adapter"),
    ("fitted.n_epochs_", 1000, "history"),
    ("fitted.weight_averaging_", -2.0, "weight_averaging_"),
    ("fitted.weight_averaging_", "auto", "weight_averaging_"),
    ("history.train_loss.0", _NAN, "finite"),
    ("history.epoch_seconds.0", -1.0, ">= 0"),
    ("history.best_epoch", 10_000, "epoch"),
    ("history.device", 5, "a string"),
    ("history.member_epochs", [3], "at least 2"),
    ("history.member_epochs", [3, 0], "member_epochs"),
    ("history", [], "an object"),
    ("adapter.columns.0.kind", "evil", "one of"),
    ("adapter.columns.0.median", _NAN, "finite"),
    ("adapter.columns.0.name", "nope", "not an input column"),
    ("adapter.columns.0.categories", [{"a": 1}], "a string, number"),
    ("adapter.version", 99, "adapter.version"),
    ("adapter.columns.0.indicator", "yes", "true or false"),
    ("adapter.input_kind", "evil", "one of"),
    ("adapter.dropped_columns", ["nope"], "not an unused input column"),
    ("adapter.columns", [], "at least 1"),
    ("feature_names_in", ["x"], "feature_names_in"),
    ("params.batch_size", -1, "batch_size"),
    ("params.evil", 1, r"params\.evil is not a parameter"),
    ("params.hidden_sizes", {"a": 1}, "params.hidden_sizes"),
    ("params.categorical_columns", "kind", "params.categorical_columns"),
    ("params.device", "no-such-device", "params.device"),
    ("detector", 5, "a string"),
    ("detector", "Detector", "unknown detector class"),
    ("adapter_kind", "images", "adapter_kind 'images' is not a known adapter"),
    ("adapter_kind", None, "adapter_kind must be a string"),
    ("sample_shape", [99], r"sample_shape is \[99\] but the adapter state"),
    ("sample_shape", [], "sample_shape must be a list of at least 1"),
    ("sample_shape", [0], "sample_shape"),
    ("adapter", [], "adapter must be an object"),
    ("versions.genad", 1, "a string"),
])
def test_invalid_document_fields_are_refused(bundle_path, tmp_path, where, value, message):
    path = _forge(bundle_path, tmp_path / "field.genad", _set(where, value))
    with pytest.raises(ModelFormatError, match=message):
        genad.load(path)


def test_categories_of_a_numeric_column_are_refused(bundle_path, tmp_path):
    path = _forge(bundle_path, tmp_path / "cats.genad", _set("adapter.columns.0.categories",
                                                            ["x"]))
    with pytest.raises(ModelFormatError, match="must be empty for a numeric column"):
        genad.load(path)


@pytest.mark.parametrize("name,value", [("adapter.scale", 0.0), ("adapter.scale", -1.0),
                                        ("adapter.scale", _NAN), ("adapter.center", np.inf),
                                        ("calibration.scores", _NAN)])
def test_non_finite_or_non_positive_arrays_are_refused(bundle_path, tmp_path, name, value):
    def edit_tensors(tensors):
        tensors[name] = tensors[name].clone()
        tensors[name][0] = value

    path = _forge(bundle_path, tmp_path / "values.genad", edit_tensors=edit_tensors)
    with pytest.raises(ModelFormatError, match=re.escape(name)):
        genad.load(path)


@pytest.mark.parametrize("shape", [(0,), (4, 2)])
def test_calibration_scores_must_be_one_dimensional_and_non_empty(bundle_path, tmp_path, shape):
    def edit_tensors(tensors):
        tensors["calibration.scores"] = torch.ones(shape, dtype=torch.float64)

    path = _forge(bundle_path, tmp_path / "cal.genad", edit_tensors=edit_tensors)
    with pytest.raises(ModelFormatError, match="calibration.scores.*1-D"):
        genad.load(path)


@pytest.mark.parametrize("change", ["dtype", "extra", "missing"])
def test_network_tensors_must_match_the_described_network(bundle_path, tmp_path, change):
    def edit_tensors(tensors):
        name = next(k for k in sorted(tensors) if k.startswith("model."))
        if change == "dtype":
            tensors[name] = tensors[name].double()
        elif change == "extra":
            tensors["model.evil"] = torch.zeros(2)
        else:
            del tensors[name]

    path = _forge(bundle_path, tmp_path / "net.genad", edit_tensors=edit_tensors)
    with pytest.raises(ModelFormatError, match="tensor 'model"):
        genad.load(path)


@pytest.mark.parametrize("device", ["auto", "cuda", "cuda:1"])
def test_a_model_trained_on_any_device_loads_on_the_cpu(bundle_path, tmp_path, table, device):
    path = _forge(bundle_path, tmp_path / "gpu.genad", _set("params.device", device))
    det = genad.load(path)
    assert det.device == device
    assert all(p.device.type == "cpu" for p in det.model_.parameters())
    np.testing.assert_array_equal(det.anomaly_score(table),
                                  genad.load(bundle_path).anomaly_score(table))


def test_loaded_detector_has_only_the_attributes_a_fit_sets(bundle_path, fitted_factory):
    det = genad.load(bundle_path)
    fitted = set(vars(fitted_factory("ae")))
    assert set(vars(det)) <= fitted
    assert fitted - set(vars(det)) <= {"train_scores_"}


# ------------------------------------------------------------ older files
_FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", sorted(json.loads(
    (Path(__file__).parent / "fixtures" / "format1-scores.json").read_text())))
def test_format1_bundles_written_before_validation_still_load(name):
    """Written by the original bundle code (tests/fixtures/make_format1_bundles.py)."""
    import pandas as pd

    expected = json.loads((_FIXTURES / "format1-scores.json").read_text())[name]
    det = genad.load(_FIXTURES / f"format1-{name}.genad")
    assert isinstance(det, genad.MODELS[name])
    assert det.threshold_ == expected["threshold"]
    probe = pd.read_csv(_FIXTURES / "format1-input.csv")
    np.testing.assert_allclose(det.anomaly_score(probe), expected["scores"], rtol=1e-5,
                               atol=1e-7)


def _as_format1(doc):
    """A document as the code before format 2 wrote it: format 1, no kind, no shape."""
    doc["genad_format"] = 1
    del doc["adapter_kind"], doc["sample_shape"]


def test_format1_documents_of_the_current_layout_still_load(bundle_path, tmp_path, table):
    # main wrote format 1 with the adapter state's version 2 before adapter_kind existed
    det = genad.load(_forge(bundle_path, tmp_path / "f1.genad", _as_format1))
    assert det.sample_shape_ == genad.load(bundle_path).sample_shape_
    np.testing.assert_array_equal(det.anomaly_score(table),
                                  genad.load(bundle_path).anomaly_score(table))


@pytest.mark.parametrize("field", ["adapter_kind", "sample_shape"])
def test_format1_documents_refuse_the_format2_fields(bundle_path, tmp_path, field):
    def edit(doc):
        value = doc[field]
        _as_format1(doc)
        doc[field] = value

    path = _forge(bundle_path, tmp_path / "mixed.genad", edit)
    with pytest.raises(ModelFormatError, match=rf"{field} is not a known field"):
        genad.load(path)


def test_load_returns_the_class_the_file_names(bundle_path):
    assert type(genad.Detector.load(bundle_path)) is genad.AutoEncoder
    assert type(genad.AutoEncoder.load(bundle_path)) is genad.AutoEncoder
    with pytest.raises(ModelFormatError, match="model.genad holds a AutoEncoder, not a VAE"):
        genad.VAE.load(bundle_path)


def test_a_document_without_n_features_in_disagrees_with_a_tabular_adapter(bundle_path,
                                                                           tmp_path):
    def edit(doc):
        del doc["fitted"]["n_features_in_"]

    with pytest.raises(ModelFormatError, match="n_features_in_ is None but the adapter"):
        genad.load(_forge(bundle_path, tmp_path / "nin.genad", edit))


def test_a_document_from_before_weight_averaging_loads_without_it(bundle_path, tmp_path):
    def edit(doc):
        del doc["fitted"]["weight_averaging_"]

    loaded = genad.load(_forge(bundle_path, tmp_path / "old.genad", edit))
    assert not hasattr(loaded, "weight_averaging_")
    assert np.isfinite(loaded.threshold_)


def test_a_document_from_before_a_parameter_loads_with_it_off(tmp_path):
    """A bundle stores every parameter, so one it lacks was saved before the parameter
    existed: it loads with the value that describes how it was trained
    (``params_before``), not with today's default."""
    images = np.random.default_rng(0).random((40, 16, 16))
    det = genad.VAEGAN(epochs=1, target_fpr=0.3, random_state=0, verbose=0).fit(images)
    path = det.save(tmp_path / "new.genad")

    def edit(doc):
        del doc["params"]["pause_discriminator_below"], doc["params"]["weight_averaging"]

    loaded = genad.load(_forge(path, tmp_path / "old.genad", edit))
    assert loaded.pause_discriminator_below is None and loaded.weight_averaging is None
    assert loaded.model_.pause_discriminator_below is None
    assert genad.load(path).model_.pause_discriminator_below == 0.5
    np.testing.assert_allclose(loaded.anomaly_score(images), det.anomaly_score(images),
                               rtol=1e-5)


# ----------------------------------------------------- the format on its own
def _even_count(body, version):
    from genad.bundle_schema import DocumentError

    if body.get("count", 0) % 2:
        raise DocumentError(f"count must be even, got {body['count']} (format {version})")


def test_the_format_round_trips_any_body_and_tensors(tmp_path):
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3),
               "s": np.array([1.5, 2.5])}
    path = genad.bundle.write(tmp_path / "plain", {"count": np.int64(2), "tags": ("a", "b")},
                              tensors, versions={"genad": "9.9"}, key="k", check=_even_count)
    assert path.name == "plain.genad"
    doc = read_document(path, key="k", check=_even_count)
    assert doc["count"] == 2 and doc["tags"] == ["a", "b"] and doc["versions"]["genad"] == "9.9"
    assert set(doc) == {"count", "tags", *genad.bundle.ENVELOPE}
    out = genad.bundle.read(path, doc, {"w": (torch.float32, (2, None)), "s": ("F64", (2,))})
    assert torch.equal(out["w"], tensors["w"]) and out["s"].tolist() == [1.5, 2.5]
    assert genad.bundle.read_header(path) == {"w": ("F32", (2, 3)), "s": ("F64", (2,))}


def test_the_body_check_runs_on_write_and_on_read(tmp_path):
    with pytest.raises(ModelFormatError, match="count must be even.*bug in genad"):
        genad.bundle.write(tmp_path / "odd", {"count": 3}, {}, check=_even_count)
    assert list(tmp_path.iterdir()) == []
    path = genad.bundle.write(tmp_path / "odd", {"count": 3}, {})
    assert read_document(path)["count"] == 3  # no check: the body is the caller's
    with pytest.raises(ModelFormatError, match=r"odd\.genad: invalid model document: count"):
        read_document(path, check=_even_count)


@pytest.mark.parametrize("field", genad.bundle.ENVELOPE)
def test_the_body_cannot_set_an_envelope_field(tmp_path, field):
    with pytest.raises(ModelFormatError, match=f"sets '{field}'"):
        genad.bundle.write(tmp_path / "env", {field: 1}, {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("expected,message", [
    ({"w": ("F32", (2, 4))}, r"'w' has shape \[2, 3\].*shape \[2, 4\]"),
    ({"w": ("F64", (2, 3))}, "'w' is F32 in the file, not F64"),
    ({"w": ("F32", (None,))}, "1-D shape with at least one entry"),
    ({}, "tensor 'w' the document does not describe"),
    ({"w": None, "v": None}, "'v' is missing"),
])
def test_read_refuses_a_header_that_differs_before_reading_data(tmp_path, monkeypatch,
                                                                expected, message):
    path = genad.bundle.write(tmp_path / "h", {}, {"w": torch.zeros(2, 3)})
    doc = read_document(path)

    def refuse(*args, **kwargs):
        raise AssertionError("tensor data read before the header was checked")

    monkeypatch.setattr(genad.bundle, "load_file", refuse)
    with pytest.raises(ModelFormatError, match=message):
        genad.bundle.read(path, doc, expected)


# ---------------------------------------------------------------- signing
@pytest.fixture(scope="module")
def signed_path(tmp_path_factory, fitted_factory):
    return fitted_factory("ae").save(tmp_path_factory.mktemp("signed") / "m.genad",
                                     key="s3cret")


def test_signed_bundle_loads_with_its_key_as_str_or_bytes(signed_path, table, fitted_factory):
    want = fitted_factory("ae").anomaly_score(table)
    for key in ("s3cret", b"s3cret"):
        np.testing.assert_array_equal(genad.load(signed_path, key=key).anomaly_score(table),
                                      want)
    signature = read_document(signed_path, key="s3cret")["signature"]
    assert signature["alg"] == "hmac-sha256" and len(signature["value"]) == 64


def test_signed_bundle_loads_without_a_key(signed_path, table, fitted_factory):
    np.testing.assert_array_equal(genad.load(signed_path).anomaly_score(table),
                                  fitted_factory("ae").anomaly_score(table))


def test_a_key_refuses_an_unsigned_bundle(bundle_path):
    with pytest.raises(ModelFormatError, match="model.genad is not signed"):
        genad.load(bundle_path, key="s3cret")
    with pytest.raises(ModelFormatError, match="not signed"):
        read_document(bundle_path, key="s3cret")


def test_a_key_refuses_a_bundle_signed_with_another_key(signed_path):
    with pytest.raises(ModelFormatError, match="signature does not match"):
        genad.load(signed_path, key="other")


def test_signature_catches_an_edit_that_the_digests_miss(signed_path, tmp_path):
    path = _forge(signed_path, tmp_path / "edited.genad",
                  _set("fitted.threshold_", 1e9))  # a valid value: only the key can tell
    assert genad.load(path).threshold_ == 1e9
    with pytest.raises(ModelFormatError, match="signature does not match"):
        genad.load(path, key="s3cret")


def test_signature_covers_the_tensors(signed_path, tmp_path):
    def edit_tensors(tensors):
        tensors["calibration.scores"] = tensors["calibration.scores"] * 0 + 1

    path = _forge(signed_path, tmp_path / "tensors.genad", edit_tensors=edit_tensors)
    genad.load(path)  # the digests were recomputed
    with pytest.raises(ModelFormatError, match="signature does not match"):
        genad.load(path, key="s3cret")


def test_a_malformed_signature_is_refused_without_a_key(signed_path, tmp_path):
    path = _forge(signed_path, tmp_path / "sig.genad", _set("signature.alg", "none"))
    with pytest.raises(ModelFormatError, match=r"signature\.alg"):
        genad.load(path)


@pytest.mark.parametrize("key", ["", b"", 5])
def test_an_empty_or_non_text_key_is_refused(fitted_factory, tmp_path, key):
    with pytest.raises(InvalidInputError, match="key"):
        fitted_factory("ae").save(tmp_path / "k.genad", key=key)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- save errors
def test_save_under_a_regular_file_raises_output_error(fitted_factory, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not-a-folder") as info:
        fitted_factory("ae").save(blocker / "m.genad")
    assert isinstance(info.value, OSError) and isinstance(info.value, GenadError)
    assert info.value.filename == str(blocker / "m.genad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_save_on_a_read_only_filesystem_raises_output_error(fitted_factory):
    with pytest.raises(OutputError, match="/proc/genad-test.genad"):
        fitted_factory("ae").save("/proc/genad-test.genad")


def test_a_failing_write_raises_output_error_and_leaves_no_temporary_file(
        fitted_factory, tmp_path, monkeypatch):
    old = fitted_factory("ae").save(tmp_path / "m.genad")
    before = old.read_bytes()

    def disk_full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(genad.bundle, "save_file", disk_full)
    with pytest.raises(OutputError, match=r"m\.genad.*No space left"):
        fitted_factory("ae").save(tmp_path / "m.genad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.genad"]  # no *.tmp
    assert old.read_bytes() == before  # the previous model is untouched
