"""The preset registry: one torch-free table that every list of models reads."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

import genad
from genad import registry
from genad.errors import InvalidInputError
from genad.registry import Preset


def test_importing_the_registry_does_not_import_torch_or_the_detectors():
    code = ("import genad.registry, sys; "
            "assert 'torch' not in sys.modules, 'torch'; "
            "assert 'genad.detector' not in sys.modules, 'detector'; "
            "assert 'genad.estimators' not in sys.modules, 'estimators'; "
            "print(len(genad.registry.names()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(registry.PRESETS))


def test_presets_are_keyed_by_their_names_in_a_read_only_table():
    assert registry.names() == tuple(registry.PRESETS)
    assert registry.names()[:4] == ("ae", "dae", "vae", "pca-cae")
    for name, p in registry.PRESETS.items():
        assert p.name == name
        assert p.summary and "\n" not in p.summary
        assert p.architecture in registry.ARCHITECTURES
        assert set(p.modalities) <= set(registry.MODALITIES)
    with pytest.raises(TypeError):
        registry.PRESETS["new"] = registry.preset("ae")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.preset("ae").name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("name", registry.names())
def test_every_preset_class_loads_and_carries_its_name(name):
    p = registry.preset(name)
    cls = registry.load_class(name)
    assert cls is p.load_class()
    assert cls.__name__ == p.class_name and cls.__module__ == p.module
    assert issubclass(cls, genad.Detector)
    assert cls.model_name == name
    assert registry.preset_for(cls) is p
    assert registry.preset_for(cls()) is p
    assert genad.MODELS[name] is cls
    assert getattr(genad, p.class_name) is cls


@pytest.mark.parametrize("name", registry.names())
def test_test_params_build_the_detector_and_match_its_architecture(name):
    p = registry.preset(name)
    params = p.test_params()
    det = p.load_class()(**params)
    assert det.get_params()["device"] == "cpu" and det.get_params()["verbose"] == 0
    # an MLP preset is sized by hidden_sizes; the conv presets by conv_width
    assert ("hidden_sizes" in params) == (p.architecture == "mlp")
    assert ("conv_width" in params) == (p.architecture in ("conv1d", "conv2d"))


def test_test_params_returns_a_fresh_copy_each_time():
    p = registry.preset("ae")
    first = p.test_params()
    first["hidden_sizes"].append(99)
    first["epochs"] = 1000
    second = p.test_params()
    assert second["hidden_sizes"] == [16] and second["epochs"] == 8
    assert second is not p.test_settings
    assert p.test_params(epochs=2, beta=1.0)["epochs"] == 2
    assert p.test_params(epochs=2, beta=1.0)["beta"] == 1.0
    with pytest.raises(TypeError):
        p.test_settings["epochs"] = 1  # type: ignore[index]


def test_preset_copies_the_settings_it_is_given():
    settings = {"hidden_sizes": [4]}
    p = Preset("x", "genad.estimators:AutoEncoder", "x", "mlp", test_settings=settings)
    settings["hidden_sizes"].append(5)
    assert p.test_params() == {"hidden_sizes": [4]}
    hash(p)  # frozen presets stay hashable


@pytest.mark.parametrize("typo, suggestion", [("pca_cae", "pca-cae"), ("AE", "ae"),
                                              ("vea", "vae")])
def test_unknown_name_suggests_the_closest_and_lists_all(typo, suggestion):
    with pytest.raises(InvalidInputError, match="unknown model") as info:
        registry.preset(typo)
    message = str(info.value)
    assert f"did you mean {suggestion!r}" in message
    assert all(repr(n) in message for n in registry.names())
    with pytest.raises(InvalidInputError, match=f"did you mean {suggestion!r}"):
        registry.load_class(typo)


def test_unknown_name_far_from_every_preset_gets_no_suggestion():
    with pytest.raises(InvalidInputError, match="unknown model 'isolation-forest'; available"):
        registry.preset("isolation-forest")


def test_names_filter_by_modality(monkeypatch):
    assert set(registry.names("tabular")) | set(registry.names("image")) == set(registry.names())
    assert "conv-ae" in registry.names("image") and "conv-ae" not in registry.names("tabular")
    assert "ae" in registry.names("tabular") and "ae" not in registry.names("image")
    base = dict(registry.PRESETS)
    monkeypatch.setattr(registry, "MODALITIES", ("tabular", "image"))
    image = Preset("img", "genad.estimators:AutoEncoder", "an image model", "conv1d",
                   modalities=("image",))
    both = Preset("both", "genad.estimators:AutoEncoder", "both", "mlp",
                  modalities=("tabular", "image"))
    monkeypatch.setattr(registry, "PRESETS", {**base, "img": image, "both": both})
    assert registry.names("image")[-2:] == ("img", "both")
    assert registry.names("tabular")[-1] == "both" and "img" not in registry.names("tabular")
    assert registry.names()[-2:] == ("img", "both")


def test_names_rejects_an_unknown_modality():
    with pytest.raises(InvalidInputError, match="did you mean 'tabular'"):
        registry.names("tabluar")


@pytest.mark.parametrize("bad, match", [
    ({"class_path": "genad.estimators.AutoEncoder"}, "module:ClassName"),
    ({"architecture": "transformer"}, "architecture must be one of"),
    ({"modalities": ("audio",)}, "modalities must be"),
    ({"modalities": ()}, "modalities must be"),
])
def test_preset_validates_its_fields(bad, match):
    fields = dict(name="x", class_path="genad.estimators:AutoEncoder", summary="x",
                  architecture="mlp")
    with pytest.raises(InvalidInputError, match=match):
        Preset(**{**fields, **bad})


def test_preset_for_finds_subclasses_and_nothing_for_other_classes():
    class Tweaked(genad.VAE):
        pass

    assert registry.preset_for(Tweaked).name == "vae"
    assert registry.preset_for(genad.DenoisingAutoEncoder).name == "dae"  # not its base "ae"
    assert registry.preset_for(genad.Detector) is None
    assert registry.preset_for(object()) is None
