"""algo.ema_decay: the moving average of the weights, checked against hand-computed values."""

import pytest
import torch
from torch import nn

from embodied.runner.weight_average import WeightAverage


def _module() -> nn.Module:
    module = nn.Module()
    module.trained = nn.Parameter(torch.zeros(2))
    module.frozen = nn.Parameter(torch.zeros(1), requires_grad=False)
    return module


def test_the_average_follows_the_warm_up_decay_and_skips_frozen_parameters():
    module = _module()
    average = WeightAverage(module, decay=0.5)
    with torch.no_grad():
        module.trained.fill_(1.0)
    average.update()  # decay min(0.5, 1/10) = 0.1: 0.1 * 0 + 0.9 * 1
    assert average.average["trained"].tolist() == pytest.approx([0.9, 0.9])
    with torch.no_grad():
        module.trained.fill_(2.0)
    average.update()  # decay min(0.5, 2/11): 2/11 * 0.9 + 9/11 * 2
    expected = 2 / 11 * 0.9 + 9 / 11 * 2
    assert average.average["trained"].tolist() == pytest.approx([expected, expected])
    assert "frozen" not in average.average


def test_applied_swaps_the_average_in_and_the_live_weights_back():
    module = _module()
    average = WeightAverage(module, decay=0.9)
    with torch.no_grad():
        module.trained.fill_(3.0)
    average.update()  # 0.1 * 0 + 0.9 * 3
    with average.applied():
        assert module.trained.tolist() == pytest.approx([2.7, 2.7])
    assert module.trained.tolist() == [3.0, 3.0]
    average.copy_to_module()
    assert module.trained.tolist() == pytest.approx([2.7, 2.7])


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_a_decay_outside_zero_one_is_a_clear_error(decay):
    with pytest.raises(ValueError, match="algo.ema_decay must be in"):
        WeightAverage(_module(), decay)
