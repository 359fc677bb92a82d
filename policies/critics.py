"""Q-function ensembles for off-policy actor-critics: E independent MLPs Q(s, a), evaluated in one batched pass."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class EnsembleLinear(nn.Module):
    """E independent linear layers applied to [E, B, in] -> [E, B, out] with one batched matmul."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[E, B, in] -> [E, B, out]."""
        return torch.baddbmm(self.bias, x, self.weight)


class QEnsemble(nn.Module):
    """``members`` Q(s, a) MLPs with ReLU (and LayerNorm after each hidden layer when ``layer_norm``: RLPD's
    critic, which keeps Q from extrapolating wildly on actions the data never took)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: list[int], members: int = 2, layer_norm: bool = True):
        super().__init__()
        if members < 1 or not hidden:
            raise ValueError(f"a Q ensemble needs >= 1 member and >= 1 hidden layer, got {members} and {hidden}")
        sizes = [obs_dim + action_dim, *hidden]
        self.hidden = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = EnsembleLinear(members, sizes[-1], 1)
        self.members, self.layer_norm = members, layer_norm

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q of every member, [E, B], for ``features`` [B, F] and ``action`` [B, A]."""
        x = torch.cat([features, action], dim=-1).expand(self.members, -1, -1)  # [E, B, F + A]
        for layer in self.hidden:
            x = layer(x)
            if self.layer_norm:
                x = F.layer_norm(x, x.shape[-1:])
            x = F.relu(x)
        return self.out(x).squeeze(-1)  # [E, B]
