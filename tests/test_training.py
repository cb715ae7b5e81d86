"""The one training loop: divergence, early stopping, best weights, reproducibility, RNG."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import genad
from genad import registry
from genad.errors import InvalidInputError, TrainingDivergedError
from genad.models.base import GenerativeModel
from genad.training import TrainConfig, auto_epochs, resolve_device, train_model


class _Scalar(GenerativeModel):
    """One parameter ``w``; the loss pushes it up by about ``lr`` per step (Adam)."""

    def __init__(self, val_losses=None, train_losses=None):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.val_losses = val_losses
        self.train_losses = train_losses
        self.w_at_epoch: dict[int, float] = {}
        self.setup_rows = None
        self.finalized_w = None

    def setup(self, x_train):
        self.setup_rows = sum(xb.shape[0] for xb in x_train)  # batches, not one tensor

    def loss(self, x):
        if self.train_losses is not None:
            return {"loss": self.w * 0 + self.train_losses[self.epoch]}
        return {"loss": -self.w + 0 * x.sum()}

    def element_scores(self, x):
        return (x - self.w) ** 2

    def validation_loss(self, x):
        self.w_at_epoch[self.epoch] = float(self.w.detach())
        if self.val_losses is None:
            return (x.sum() * 0 + 1.0).reshape(())
        return torch.tensor(self.val_losses[self.epoch], dtype=x.dtype)

    def finalize(self, x_train):
        self.finalized_w = float(self.w.detach())


@pytest.fixture
def two_threads():
    """Two torch threads for the test (the suite runs on one), restored afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


def _config(**kw):
    base = dict(epochs=30, batch_size=1000, learning_rate=0.1, patience=2, verbose=0,
                random_state=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _x(n=32, d=3, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


# ------------------------------------------------------------------ divergence
def test_nan_loss_raises_with_advice():
    model = _Scalar(train_losses=[float("nan")] * 5)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1.*nan.*learning_rate"):
        train_model(model, _x(), _x(8), _config())


def test_inf_validation_loss_raises():
    model = _Scalar(val_losses=[1.0, float("inf")] + [1.0] * 30)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2.*validation loss.*inf"):
        train_model(model, _x(), _x(8), _config())


def test_exploding_loss_raises():
    model = _Scalar(train_losses=[1.0, 10.0, 1e8, 1e9, 1e10])
    with pytest.raises(TrainingDivergedError, match="exploding"):
        train_model(model, _x(), _x(8), _config(epochs=5))


def test_huge_learning_rate_raises_training_diverged_with_advice(make_detector, normal_array):
    det = make_detector("ae", learning_rate=1e6, epochs=5)
    with pytest.raises(TrainingDivergedError, match="learning_rate"):
        det.fit(normal_array)
    assert not hasattr(det, "model_")


def test_unhealthy_model_raises_its_advice():
    class _Unhealthy(_Scalar):
        def check_health(self, x_val):
            return "the generator collapsed; try X"

    with pytest.raises(TrainingDivergedError, match="generator collapsed; try X"):
        train_model(_Unhealthy(), _x(), _x(8), _config(epochs=2))


# ------------------------------------------------------------------ early stopping
def test_early_stopping_stops_and_restores_best_weights():
    val = [5.0, 4.0, 3.0, 3.5, 4.0, 4.5, 5.0] + [6.0] * 30
    model = _Scalar(val_losses=val)
    history = train_model(model, _x(), _x(8), _config(epochs=30, patience=2))
    assert history["stopped_early"] is True
    assert history["best_epoch"] == 2
    assert len(history["train_loss"]) == 5 < 30  # epochs 0..4: two without improvement
    assert history["val_loss"] == val[:5]
    # the weights are those of epoch 2, not of the last epoch
    assert model.w_at_epoch[4] > model.w_at_epoch[2]
    assert float(model.w) == model.w_at_epoch[2]
    # hooks: setup saw the training rows, finalize ran on the restored weights
    assert model.setup_rows == 32
    assert model.finalized_w == model.w_at_epoch[2]
    assert not model.training  # left in eval mode


def test_no_early_stop_while_improving():
    val = [10.0 - i for i in range(8)]
    model = _Scalar(val_losses=val)
    history = train_model(model, _x(), _x(8), _config(epochs=8, patience=2))
    assert history["stopped_early"] is False
    assert history["best_epoch"] == 7
    assert len(history["train_loss"]) == 8
    assert set(history) >= {"train_loss", "val_loss", "epoch_seconds", "best_epoch",
                            "stopped_early", "device"}
    assert len(history["epoch_seconds"]) == 8
    assert history["device"] == "cpu"


def test_min_delta_counts_tiny_improvements_as_none():
    val = [1.0, 0.99999, 0.99998, 0.99997] + [0.99996] * 10
    history = train_model(_Scalar(val_losses=val), _x(), _x(8),
                          _config(epochs=14, patience=2, min_delta=1e-3))
    assert history["best_epoch"] == 0
    assert history["stopped_early"] is True


def test_detector_early_stopping_records_best_epoch(make_detector, normal_array):
    det = make_detector("ae", epochs=200, patience=2, learning_rate=1e-2).fit(normal_array)
    h = det.history_
    assert h["stopped_early"] is True
    assert det.n_epochs_ == len(h["train_loss"]) < 200
    assert h["best_epoch"] == int(np.argmin(h["val_loss"]))
    assert det.n_epochs_ - 1 - h["best_epoch"] == 2


# ------------------------------------------------------------------ weight averaging
def test_weight_averaging_validates_and_keeps_the_moving_average_of_the_raw_weights():
    val = [10.0 - i for i in range(12)]  # always improving: the last epoch is the best
    raw = _Scalar(val_losses=val)
    train_model(raw, _x(), _x(8), _config(epochs=12))
    averaged = _Scalar(val_losses=val)
    train_model(averaged, _x(), _x(8), _config(epochs=12, average_epochs=2.0))
    # one optimiser step an epoch, span 2 steps (decay 0.5, shorter while warming up);
    # training itself follows the raw weights, so their path is the unaveraged run's
    expected, avg = [], 0.0
    for step in range(1, 13):
        decay = min(0.5, (1.0 + step) / (10.0 + step))
        avg = decay * avg + (1.0 - decay) * raw.w_at_epoch[step - 1]
        expected.append(avg)
    assert [averaged.w_at_epoch[e] for e in range(12)] == pytest.approx(expected, rel=1e-5)
    assert expected[-1] < raw.w_at_epoch[11]  # the average lags the rising raw weight
    assert float(averaged.w) == pytest.approx(expected[-1], rel=1e-5)  # kept: the average
    assert averaged.finalized_w == pytest.approx(expected[-1], rel=1e-5)


def test_weight_averaging_restores_the_average_of_the_best_epoch():
    val = [5.0, 4.0, 3.0, 3.5, 4.0] + [6.0] * 30
    model = _Scalar(val_losses=val)
    history = train_model(model, _x(), _x(8), _config(epochs=30, patience=2,
                                                      average_epochs=3.0))
    assert history["best_epoch"] == 2
    assert float(model.w) == model.w_at_epoch[2]  # the averaged weights validated then


def test_detector_weight_averaging_auto_is_on_for_images_only(normal_array):
    table = genad.AutoEncoder(epochs=1, verbose=0, random_state=0, target_fpr=0.5).fit(normal_array)
    assert table.weight_averaging_ is None
    chosen = genad.AutoEncoder(epochs=1, verbose=0, random_state=0, target_fpr=0.5,
                               weight_averaging=1.5).fit(normal_array)
    assert chosen.weight_averaging_ == 1.5
    images = np.random.default_rng(0).integers(0, 255, size=(24, 32, 32), dtype=np.uint8)
    conv = genad.ConvAutoEncoder(epochs=1, verbose=0, random_state=0, target_fpr=0.5).fit(images)
    assert conv.weight_averaging_ == genad.data.ImageAdapter.auto_weight_averaging == 2.0
    off = genad.ConvAutoEncoder(epochs=1, verbose=0, random_state=0, target_fpr=0.5,
                                weight_averaging=None).fit(images)
    assert off.weight_averaging_ is None


# ------------------------------------------------------------------ reproducibility
def test_train_model_is_reproducible_with_random_state():
    def run(seed):
        torch.manual_seed(123)
        model = genad.models.AutoEncoderModel(nn.Linear(3, 2), nn.Linear(2, 3))
        torch.manual_seed(999 if seed is None else 7)  # global state must not matter
        train_model(model, _x(64), _x(8, seed=1), _config(epochs=3, batch_size=16,
                                                          learning_rate=1e-2, random_state=seed))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


@pytest.mark.parametrize("name", sorted(registry.names("tabular")))
def test_detector_fit_is_reproducible_and_ignores_global_seed(name, make_detector, normal_array):
    torch.manual_seed(1)
    np.random.seed(1)
    a = make_detector(name, epochs=3).fit(normal_array).anomaly_score(normal_array)
    torch.manual_seed(2)
    np.random.seed(2)
    b = make_detector(name, epochs=3).fit(normal_array).anomaly_score(normal_array)
    np.testing.assert_array_equal(a, b)
    c = make_detector(name, epochs=3, random_state=1).fit(normal_array)
    assert not np.array_equal(a, c.anomaly_score(normal_array))


@pytest.mark.parametrize("name", sorted(registry.names("tabular")))
def test_fit_leaves_global_torch_rng_and_threads_unchanged(name, make_detector, normal_array,
                                                           two_threads):
    torch.manual_seed(42)
    state = torch.get_rng_state()
    det = make_detector(name, epochs=2).fit(normal_array)  # trains on one thread
    det.anomaly_score(normal_array)
    det.anomaly_map(normal_array)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.get_num_threads() == 2


def test_thread_count_is_restored_when_training_fails(two_threads):
    model = _Scalar(train_losses=[float("nan")] * 5)
    with pytest.raises(TrainingDivergedError):
        train_model(model, _x(), _x(8), _config())
    assert torch.get_num_threads() == 2


def test_random_state_none_still_trains(make_detector, normal_array):
    det = make_detector("ae", epochs=2, random_state=None).fit(normal_array)
    assert np.all(np.isfinite(det.anomaly_score(normal_array)))


def test_quiet_fit_prints_nothing(make_detector, normal_array, capsys):
    make_detector("ae", epochs=2, verbose=1).fit(normal_array)  # stderr is not a tty here
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize("batch", [1, 64, 256])
def test_auto_epochs_gives_enough_steps_within_a_cap(batch):
    previous = None
    for rows in (2, 10, 1000, 5000, 10**5, 10**6, 10**7):
        epochs = auto_epochs(rows, batch)
        steps = math.ceil(rows / batch)
        assert 1 <= epochs <= 500
        assert epochs * steps >= 4000 or epochs == 500
        if previous is not None:
            assert epochs <= previous  # more data, fewer (or as many) epochs
        previous = epochs


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-please")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_raises(normal_array):
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(InvalidInputError, match="CUDA"):
        genad.AutoEncoder(device="cuda", epochs=1, verbose=0).fit(normal_array)


@pytest.mark.parametrize(
    "param,value",
    [("epochs", 0), ("epochs", 2.5), ("batch_size", 0), ("patience", -1), ("latent_dim", 0),
     ("hidden_sizes", 8), ("hidden_sizes", [8, 0]), ("learning_rate", 0.0),
     ("weight_decay", -1.0), ("validation_fraction", 1.0), ("contamination", 0.0),
     ("epochs", True), ("weight_averaging", 0.0), ("weight_averaging", "always")],
)
def test_bad_training_parameters_raise_naming_them(param, value, normal_array):
    det = genad.AutoEncoder(verbose=0, **{param: value})
    with pytest.raises(InvalidInputError, match=param.split("_")[0]):
        det.fit(normal_array)


# ------------------------------------------------------------------ progress in logs
def test_verbose_2_prints_a_line_every_few_epochs(capsys):
    history = train_model(_Scalar(val_losses=[10.0 - i for i in range(20)]), _x(), _x(8),
                          _config(epochs=20, patience=30, verbose=2))
    err = capsys.readouterr().err.splitlines()
    assert [ln.split()[1] for ln in err] == [f"{e}/20" for e in range(2, 21, 2)]
    last = history["train_loss"][-1], history["val_loss"][-1]
    assert err[-1].startswith(f"epoch 20/20  loss {last[0]:.4g}  val {last[1]:.4g}  (")
    assert err[-1].endswith(" s)")


def test_verbose_2_prints_the_epoch_where_training_stops_early(capsys):
    val = [5.0, 4.0, 3.0] + [6.0] * 30
    train_model(_Scalar(val_losses=val), _x(), _x(8), _config(epochs=30, patience=2, verbose=2))
    err = capsys.readouterr().err.splitlines()
    assert [ln.split()[1] for ln in err] == ["3/30", "5/30"]  # every 3rd epoch, then the stop


def test_detector_verbose_2_logs_without_a_terminal(make_detector, normal_array, capsys):
    make_detector("ae", epochs=3, verbose=2).fit(normal_array)
    err = capsys.readouterr().err
    assert [ln.split()[1] for ln in err.splitlines() if ln.startswith("epoch ")] == [
        "1/3", "2/3", "3/3"]


# ------------------------------------------------------------------ epoch cap
def test_hit_epoch_cap_while_still_improving():
    history = train_model(_Scalar(val_losses=[10.0 - i for i in range(8)]), _x(), _x(8),
                          _config(epochs=8, patience=3))
    assert history["hit_epoch_cap"] is True


def test_no_epoch_cap_after_early_stopping():
    val = [5.0, 4.0, 3.0] + [6.0] * 30
    history = train_model(_Scalar(val_losses=val), _x(), _x(8), _config(epochs=30, patience=2))
    assert history["stopped_early"] is True
    assert history["hit_epoch_cap"] is False


def test_no_epoch_cap_when_the_loss_levelled_off_before_the_end():
    # best at epoch 3 of 8, patience 6: no early stop, but no improvement in the last
    # 4 epochs (more than half the patience window): the loss has levelled off
    val = [5.0, 4.0, 3.5, 3.0] + [3.2] * 4
    history = train_model(_Scalar(val_losses=val), _x(), _x(8), _config(epochs=8, patience=6))
    assert history["stopped_early"] is False
    assert history["hit_epoch_cap"] is False


def test_detector_warns_when_it_hits_the_epoch_cap(make_detector, normal_array):
    from genad.errors import GenadWarning

    with pytest.warns(GenadWarning, match=r"epoch cap \(2 epochs\).*still improving"):
        det = make_detector("ae", epochs=2).fit(normal_array)
    assert det.history_["hit_epoch_cap"] is True


def test_detector_does_not_warn_after_early_stopping(make_detector, normal_array):
    import warnings

    from genad.errors import GenadWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", GenadWarning)
        det = make_detector("ae", epochs=200, patience=2, learning_rate=1e-2).fit(normal_array)
    assert det.history_["stopped_early"] is True
    assert det.history_["hit_epoch_cap"] is False


# --------------------------------------------- several optimisers, several phases
class _TwoPlayers(GenerativeModel):
    """GAN-shaped toy: a generator and a discriminator, two optimisers, loss parts."""

    def __init__(self):
        super().__init__()
        self.g = nn.Linear(2, 2)
        self.d = nn.Linear(2, 1)

    def configure_optimizers(self, learning_rate, weight_decay):
        return [torch.optim.Adam(self.g.parameters(), lr=learning_rate),
                torch.optim.Adam(self.d.parameters(), lr=learning_rate)]

    def train_step(self, x, optimizers):
        from genad.models import losses

        opt_g, opt_d = optimizers
        opt_d.zero_grad()
        d_loss = losses.bce_discriminator_loss(self.d(x), self.d(self.g(x).detach()))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        recon = ((self.g(x) - x) ** 2).sum(dim=1).mean()
        g_loss = recon + 0.01 * losses.bce_generator_loss(self.d(self.g(x)))
        g_loss.backward()
        opt_g.step()
        return {"loss": recon.detach(), "generator_loss": g_loss.detach(),
                "discriminator_loss": d_loss.detach()}

    def element_scores(self, x):
        return (self.g(x) - x) ** 2


def test_a_two_optimiser_model_trains_through_the_loop_and_keeps_every_loss_part():
    torch.manual_seed(0)
    model = _TwoPlayers()
    g0, d0 = model.g.weight.detach().clone(), model.d.weight.detach().clone()
    x = torch.randn(200, 2)
    history = train_model(model, x[:160], x[160:],
                          TrainConfig(epochs=4, batch_size=32, patience=10, verbose=0,
                                      random_state=0))
    assert len(history["train_loss"]) == 4
    assert set(history["parts"]) == {"generator_loss", "discriminator_loss"}
    for values in history["parts"].values():
        assert len(values) == 4 and all(math.isfinite(v) for v in values)
    assert not torch.equal(model.g.weight, g0) and not torch.equal(model.d.weight, d0)


class _TwoStages(GenerativeModel):
    """f-AnoGAN-shaped toy: phase "first" trains ``a``, phase "second" only ``b``."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.b = nn.Linear(2, 2)
        self.phases_seen: list[str] = []
        self.a_after_first = None

    def phases(self):
        from genad.training import Phase

        return (Phase("first", epochs=3), Phase("second", epochs=2, patience=5))

    def configure_optimizers(self, learning_rate, weight_decay):
        self.phases_seen.append(self.phase)
        if self.phase == "second":
            self.a_after_first = self.a.weight.detach().clone()
        part = self.a if self.phase == "first" else self.b
        return [torch.optim.Adam(part.parameters(), lr=learning_rate)]

    def loss(self, x):
        err = ((self.b(self.a(x)) - x) ** 2).sum(dim=1).mean()
        return {"loss": err, f"{self.phase}_error": err}

    def element_scores(self, x):
        return (self.b(self.a(x)) - x) ** 2


def test_phases_run_in_order_with_their_own_optimisers_and_history():
    torch.manual_seed(0)
    model = _TwoStages()
    x = torch.randn(200, 2)
    history = train_model(model, x[:160], x[160:],
                          TrainConfig(epochs=50, batch_size=32, patience=10, verbose=0,
                                      random_state=0))
    assert model.phases_seen == ["first", "second"]
    assert [p["name"] for p in history["phases"]] == ["first", "second"]
    assert [p["epochs"] for p in history["phases"]] == [3, 2]  # the phases' own epochs
    assert len(history["train_loss"]) == len(history["val_loss"]) == 5
    assert history["parts"]["first_error"][:3] == pytest.approx(history["train_loss"][:3])
    assert history["parts"]["second_error"][:3] == [None, None, None]
    assert 3 <= history["best_epoch"] < 5  # counted from the first epoch, in the last phase
    assert torch.equal(model.a.weight, model.a_after_first)  # frozen in the second phase


def test_a_model_whose_train_step_returns_no_loss_is_refused():
    class NoLoss(_TwoPlayers):
        def train_step(self, x, optimizers):
            return {"generator_loss": torch.zeros(())}

    with pytest.raises(TypeError, match="must return a 'loss'"):
        train_model(NoLoss(), torch.randn(20, 2), torch.randn(5, 2),
                    TrainConfig(epochs=1, verbose=0))


def test_a_lazy_sample_set_trains_through_a_data_loader_like_the_tensor():
    # the DataLoader path (files read per batch) sees the same rows as the tensor path
    from genad.data.base import SampleSet, TensorSampleSet

    class Lazy(SampleSet):
        def __init__(self, tensor):
            self.tensor_ = tensor
            self.sample_shape = tuple(tensor.shape[1:])
            self.owner = np.arange(len(tensor))
            self.n_samples = len(tensor)
            self.meta = {}

        def __len__(self):
            return len(self.tensor_)

        def __getitem__(self, i):
            return self.tensor_[i]

        def subset(self, units):
            return Lazy(self.tensor_[torch.from_numpy(np.asarray(units))])

    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(3))
    runs = []
    for train, val in ((TensorSampleSet(x[:240]), TensorSampleSet(x[240:])),
                       (Lazy(x[:240]), Lazy(x[240:]))):
        torch.manual_seed(0)
        model = _TwoStages()
        runs.append(train_model(model, train, val, TrainConfig(
            epochs=3, batch_size=32, verbose=0, random_state=0)))
    assert runs[0]["train_loss"] == pytest.approx(runs[1]["train_loss"], rel=1e-5)
    assert runs[0]["val_loss"] == pytest.approx(runs[1]["val_loss"], rel=1e-5)


class _Recorder(_Scalar):
    """Records what the data hooks receive: the batches' shapes, per hook."""

    def __init__(self):
        super().__init__()
        self.seen: dict[str, list] = {}

    def _record(self, name, data):
        assert not isinstance(data, torch.Tensor), f"{name} got one stacked tensor"
        self.seen.setdefault(name, []).append([tuple(xb.shape) for xb in data])

    def setup(self, x_train):
        self._record("setup", x_train)
        self._record("setup", x_train)  # iterable again: PCA reads its rows twice

    def finalize(self, x_train):
        self._record("finalize", x_train)

    def check_health(self, x_val):
        self._record("check_health", x_val)
        return None


def test_data_hooks_get_re_iterable_batches_of_a_lazy_set_never_one_tensor():
    from genad.data.base import SampleSet

    class Lazy(SampleSet):
        def __init__(self, tensor):
            self.tensor_ = tensor
            self.sample_shape = tuple(tensor.shape[1:])
            self.owner = np.arange(len(tensor))
            self.n_samples = len(tensor)
            self.meta = {}

        def __len__(self):
            return len(self.tensor_)

        def __getitem__(self, i):
            return self.tensor_[i]

        def subset(self, units):
            return Lazy(self.tensor_[torch.from_numpy(np.asarray(units))])

        def stacked(self):
            raise AssertionError("the loop must not stack a lazily read set")

    model = _Recorder()
    train_model(model, Lazy(torch.randn(70, 3)), Lazy(torch.randn(20, 3)),
                _config(epochs=2, batch_size=32))
    # the loop's batch size (32), every unit once, and the same batches on a second pass
    assert model.seen["setup"] == [[(32, 3), (32, 3), (6, 3)]] * 2
    assert model.seen["finalize"] == [[(32, 3), (32, 3), (6, 3)]]
    assert model.seen["check_health"] == [[(20, 3)]]


def test_data_hooks_of_a_tensor_set_get_the_slices_mean_over_would_make():
    from genad.models.base import FINALIZE_BATCH

    model = _Recorder()
    n = FINALIZE_BATCH + 5
    train_model(model, torch.randn(n, 2), torch.randn(7, 2), _config(epochs=1))
    assert model.seen["finalize"] == [[(FINALIZE_BATCH, 2), (5, 2)]]
    assert model.seen["check_health"] == [[(7, 2)]]


# --------------------------------------------------- phases without early stopping
class _Rising(_TwoStages):
    """Phase "first" has no early stopping, and its held-out loss only gets worse."""

    def __init__(self):
        super().__init__()
        self.a_at: dict[int, torch.Tensor] = {}

    def phases(self):
        from genad.training import Phase

        return (Phase("first", epochs=4, patience=1, early_stopping=False),
                Phase("second", epochs=2))

    def validation_loss(self, x):
        if self.phase != "first":
            return super().validation_loss(x)
        self.a_at[self.epoch] = self.a.weight.detach().clone()
        return torch.tensor(float(self.epoch), dtype=x.dtype)


def test_a_phase_without_early_stopping_runs_every_epoch_and_keeps_the_last_weights():
    torch.manual_seed(0)
    model = _Rising()
    x = torch.randn(200, 2)
    history = train_model(model, x[:160], x[160:], TrainConfig(
        epochs=50, batch_size=32, patience=1, verbose=0, random_state=0))
    first = history["phases"][0]
    assert (first["epochs"], first["best_epoch"], first["stopped_early"]) == (4, 3, False)
    assert history["val_loss"][:4] == [0.0, 1.0, 2.0, 3.0]  # recorded all the same
    # the second phase started from the last epoch's weights, not the "best" (epoch 0)
    assert torch.equal(model.a_after_first, model.a_at[3])
    assert not torch.equal(model.a_after_first, model.a_at[0])


def test_a_non_finite_loss_part_stops_training_naming_it():
    class NaNCritic(_TwoPlayers):
        def train_step(self, x, optimizers):
            parts = super().train_step(x, optimizers)
            parts["discriminator_loss"] = parts["discriminator_loss"] * float("nan")
            return parts

    torch.manual_seed(0)
    with pytest.raises(TrainingDivergedError,
                       match=r"epoch 1.*part 'discriminator_loss' is nan.*learning_rate"):
        train_model(NaNCritic(), torch.randn(40, 2), torch.randn(8, 2),
                    TrainConfig(epochs=3, batch_size=16, verbose=0, random_state=0))
