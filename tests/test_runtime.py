"""Device choice, CPU threads and batched inference (genad.runtime)."""

from __future__ import annotations

import pytest
import torch

from genad.runtime import (
    ONE_THREAD_FLOPS,
    SCORE_BATCH,
    clear_aligned_cache,
    cpu_threads,
    flops_per_sample,
    predict_in_batches,
    resolve_device,
)

CPU = torch.device("cpu")


def _net(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(30, 60), torch.nn.LeakyReLU(),
                               torch.nn.Linear(60, 10), torch.nn.LeakyReLU(),
                               torch.nn.Linear(10, 30))


def test_resolve_device():
    assert resolve_device("auto").type in ("cpu", "cuda")
    assert resolve_device(CPU) is CPU
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")


def test_workers_do_not_change_a_single_bit():
    net = _net()
    x = torch.randn(3 * SCORE_BATCH + 123, 30, generator=torch.Generator().manual_seed(1))
    with cpu_threads(net, CPU, flops=1.0):
        one = predict_in_batches(net, x, CPU, workers=1)
        two = predict_in_batches(net, x, CPU, workers=2)
        three = predict_in_batches(net, x, CPU, workers=3)
    assert one.shape == (x.shape[0], 30)
    assert torch.equal(one, two) and torch.equal(one, three)


def test_the_padded_weights_follow_every_change_of_the_weights():
    # the aligned copies of the weights are cached: an in-place update (optimiser step,
    # load_state_dict) must be seen by the next call
    net = _net()
    x = torch.randn(40, 30, generator=torch.Generator().manual_seed(2))
    before = predict_in_batches(net, x, CPU)
    with torch.no_grad():
        net[2].weight.mul_(2.0)
        net[2].bias.add_(1.0)
    after = predict_in_batches(net, x, CPU)
    assert not torch.equal(before, after)
    fresh = _net(seed=9)  # no cache yet
    fresh.load_state_dict(net.state_dict())
    assert torch.equal(after, predict_in_batches(fresh, x, CPU))
    other = _net(seed=5)
    net.load_state_dict(other.state_dict())
    assert torch.equal(predict_in_batches(net, x, CPU), predict_in_batches(other, x, CPU))


def test_a_fused_optimiser_step_is_seen_after_clearing_the_cache():
    # fused Adam updates the weights in place without bumping their version counter:
    # the training loop clears the cache around training
    net = _net()
    x = torch.randn(40, 30, generator=torch.Generator().manual_seed(3))
    before = predict_in_batches(net, x, CPU)
    opt = torch.optim.Adam(net.parameters(), lr=0.1, fused=True)
    net(x).square().sum().backward()
    opt.step()
    clear_aligned_cache(net)
    fresh = _net(seed=9)
    fresh.load_state_dict(net.state_dict())
    after = predict_in_batches(net, x, CPU)
    assert not torch.equal(before, after)
    assert torch.equal(after, predict_in_batches(fresh, x, CPU))


def test_flops_per_sample_counts_matrix_products():
    net = _net()
    assert flops_per_sample(net, (30,)) == 2 * (30 * 60 + 60 * 10 + 10 * 30)


def test_light_models_run_on_one_thread_per_worker_and_the_count_is_restored():
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with cpu_threads(_net(), CPU, flops=1000.0) as threads:
            assert torch.get_num_threads() == 1
            assert threads.workers == 2
        assert torch.get_num_threads() == 2
        with cpu_threads(_net(), CPU, flops=ONE_THREAD_FLOPS * 10) as threads:
            assert torch.get_num_threads() == 2  # a heavy model keeps every thread
            assert threads.workers == 1
    finally:
        torch.set_num_threads(saved)


def test_without_flops_the_parameter_count_decides():
    small = cpu_threads(_net(), CPU)
    big = cpu_threads(torch.nn.Linear(2000, 1100), CPU)
    assert small.threads == 1 and big.threads is None
