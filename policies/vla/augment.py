"""Image augmentation for imitation from pixels: DrQ's random shift."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift each uint8 image [B, H, W, 3] by up to ``pad`` pixels (edge-replicated), as DrQ / DrQ-v2 do."""
    assert images.dtype == torch.uint8 and images.ndim == 4, f"expected uint8 [B, H, W, 3], got {images.dtype}"
    b, h, w, _ = images.shape
    padded = F.pad(images.permute(0, 3, 1, 2).float(), (pad, pad, pad, pad), mode="replicate")  # [B, 3, H+2p, W+2p]
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b, 1), device=images.device)
    rows = dy + torch.arange(h, device=images.device)  # [B, H]
    cols = dx + torch.arange(w, device=images.device)  # [B, W]
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].to(torch.uint8)  # [B, H, W, 3]
