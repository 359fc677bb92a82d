"""``algo.ema_decay``: an exponential moving average of the trained weights, evaluated and saved instead of the last
ones (the usual way to evaluate behaviour cloning: diffusion policy, robomimic)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """Polyak average of a module's trainable parameters, with the warm-up decay ``min(decay, (1+k)/(10+k))``
    so that short runs are not dominated by the initial weights."""

    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"algo.ema_decay must be in (0, 1) (e.g. 0.999), got {decay}")
        self.module, self.decay, self.updates = module, decay, 0
        self.average = {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the module's current parameters into the average (call after each optimiser step)."""
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in self.module.named_parameters():
            if name in self.average:
                self.average[name].lerp_(p.detach(), 1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to_module(self) -> None:
        """Overwrite the module's parameters with the average."""
        parameters = dict(self.module.named_parameters())
        for name, value in self.average.items():
            parameters[name].copy_(value)

    @contextmanager
    def applied(self):
        """The module holds the averaged parameters inside the block and its own ones again after it."""
        live = {name: p.detach().clone() for name, p in self.module.named_parameters() if name in self.average}
        self.copy_to_module()
        try:
            yield
        finally:
            parameters = dict(self.module.named_parameters())
            with torch.no_grad():
                for name, value in live.items():
                    parameters[name].copy_(value)
