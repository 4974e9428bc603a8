"""A JPEG block-DCT stream: the 8 x 8 DCT coefficients of the luma, on the JPEG grid, as features at 1/8 scale.

JPEG stores each 8 x 8 block of the luma as 64 quantised DCT coefficients. A region pasted from
another JPEG, or compressed twice on a shifted grid, carries another quantisation history, which shows
in the statistics of its coefficients (CAT-Net, DocTamper read the file's own coefficients; here they
are recomputed from the decoded pixels, so crops must keep the 8-pixel grid, which the data engine's
crops do since they are compressed after cutting). Coefficients are in 8-bit units, their magnitude
clipped at ``clip`` (CAT-Net clips at 20) and log-scaled, and a small conv block turns the 64 channels
into features that join the trace branch's 1/8-scale level.

Hook point: ``trace.dct`` ``[B, C, H/8, W/8]``.

Example:
    >>> import torch
    >>> coefficients = block_dct(torch.full((1, 1, 16, 24), 1.0))
    >>> coefficients.shape, round(float(coefficients[0, 0, 0, 0]), 3), float(coefficients[0, 1:].abs().max()) < 1e-4
    (torch.Size([1, 64, 2, 3]), 1016.0, True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from forensix.hooks import HookPoint

_LUMA = (0.299, 0.587, 0.114)


def dct_basis() -> torch.Tensor:
    """The 64 orthonormal 8 x 8 DCT-II basis images as conv filters ``[64, 1, 8, 8]`` (frequency-major order)."""
    k = torch.arange(8, dtype=torch.float64)
    scale = torch.full((8,), math.sqrt(2 / 8))
    scale[0] = math.sqrt(1 / 8)
    cos = scale[:, None] * torch.cos(math.pi * (2 * k[None] + 1) * k[:, None] / 16)  # [freq, position]
    basis = cos[:, None, :, None] * cos[None, :, None, :]  # [u, v, y, x]
    return basis.reshape(64, 1, 8, 8).float()


def block_dct(gray: torch.Tensor) -> torch.Tensor:
    """DCT coefficients of each 8 x 8 block of ``[B, 1, H, W]`` luma in [0, 1], in 8-bit units (JPEG's level shift).

    The image is cut at multiples of 8 from its top-left corner, as a JPEG encoder does; a ragged edge is dropped.
    """
    basis = dct_basis().to(gray)
    return F.conv2d(gray * 255.0 - 128.0, basis, stride=8)


class DCTStream(nn.Module):
    """Luma block-DCT magnitudes (clipped, log-scaled) -> ``channels`` features on the 8-pixel block grid."""

    def __init__(self, channels: int, clip: float = 20.0) -> None:
        super().__init__()
        self.clip = clip
        self.encode = nn.Sequential(nn.Conv2d(64, channels, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(channels, channels, 3, padding=1))
        # starts as the identity on the trace level it joins (as LocalAnomaly does), so a stream added to a
        # trained branch (``warm_start``) changes nothing until it has learned something
        nn.init.zeros_(self.encode[-1].weight)
        nn.init.zeros_(self.encode[-1].bias)
        self.hook_out = HookPoint("trace.dct")

    def forward(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Features for ``[B, 3, H, W]`` images in [0, 1], resized to ``size`` (the trace branch's 1/8 level)."""
        luma = (images * torch.tensor(_LUMA, device=images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if min(luma.shape[-2:]) < 8:
            luma = F.pad(luma, (0, max(0, 8 - luma.shape[-1]), 0, max(0, 8 - luma.shape[-2])), mode="replicate")
        magnitude = torch.log1p(block_dct(luma).abs().clamp_max(self.clip))
        features = self.encode(magnitude)
        if features.shape[-2:] != size:
            features = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
        return self.hook_out(features)


__all__ = ["DCTStream", "block_dct", "dct_basis"]
