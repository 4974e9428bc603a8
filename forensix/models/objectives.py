"""The localizer's training objective, one switchable term per published idea.

``localizer_loss`` adds, as :class:`~forensix.config.LocalizerConfig` asks:

| term | config field | idea (where it comes from) |
|---|---|---|
| pixel BCE, plain or class-balanced per image | ``pixel_loss`` | SAFIRE: weights clamped to [0.1, 10] |
| soft dice on forged images | ``dice_weight`` | TruFor, most localizers |
| focal modulation of the BCE | ``focal_gamma`` | RetinaNet |
| extra BCE weight on a band around the mask's boundary | ``edge_weight`` | IML-ViT (weight 20) |
| the same pixel terms at every decoder level | ``deep_supervision`` | PSCC-Net (4 scales) |
| image-level BCE of the top-1 % pixel logits | ``image_loss`` | MVSS-Net: authentic images train too |
| per-image pixel contrast of the decoder features | ``contrastive`` | FOCAL, CFL-Net, NCL-IML |

Every term is a mean over the batch, so their weights compare. ``benchmarks/ablation.py`` measures
what each one does.

Example:
    >>> import torch
    >>> from forensix.config import LocalizerConfig
    >>> t = torch.zeros(2, 1, 16, 16); t[0, :, 4:9, 4:9] = 1
    >>> out = LocalizerOutput(logits=t * 8 - 4, levels=[], features=torch.randn(2, 4, 16, 16))
    >>> terms = localizer_loss(out, t, LocalizerConfig(pixel_loss="balanced", image_loss=1.0, contrastive=0.1))
    >>> sorted(terms)
    ['contrastive', 'dice', 'image', 'pixel']
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forensix.config import LocalizerConfig
from forensix.errors import BadConfigError
from forensix.models.mask_encoder import top_mean

PIXEL_LOSSES = ("bce", "balanced")


@dataclass
class LocalizerOutput:
    """What the FL-Expert computes: mask logits at input size, each decoder level's logits, the last level's features."""

    logits: torch.Tensor
    levels: list[torch.Tensor]
    features: torch.Tensor

    @property
    def image_logits(self) -> torch.Tensor:
        """``[B]`` image-level logits: the mean of each image's top-1 % pixel logits."""
        return top_mean(self.logits)


def _class_weights(target: torch.Tensor, balanced: bool) -> torch.Tensor:
    """Per-pixel weights: 1, or SAFIRE's per-image class balance ``0.5 / class share`` clamped to [0.1, 10]."""
    if not balanced:
        return torch.ones_like(target)
    share_forged = target.flatten(1).mean(1).view(-1, 1, 1, 1)
    w_forged = (0.5 / share_forged.clamp_min(1e-6)).clamp(0.1, 10.0)
    w_authentic = (0.5 / (1 - share_forged).clamp_min(1e-6)).clamp(0.1, 10.0)
    return torch.where(target > 0.5, w_forged, w_authentic)


def boundary_band(target: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within ``width`` of the mask's boundary (inside or outside), as ``{0, 1}``.

    Example:
        >>> t = torch.zeros(1, 1, 9, 9); t[..., 3:6, 3:6] = 1
        >>> int(boundary_band(t, 1).sum())
        24
    """
    k = 2 * width + 1
    dilated = F.max_pool2d(target, k, stride=1, padding=width)
    eroded = -F.max_pool2d(-target, k, stride=1, padding=width)
    return (dilated - eroded).clamp(0, 1)


def pixel_terms(logits: torch.Tensor, target: torch.Tensor, cfg: LocalizerConfig) -> dict[str, torch.Tensor]:
    """The pixel BCE (weighted as configured) and the soft dice of one resolution level."""
    if cfg.pixel_loss not in PIXEL_LOSSES:
        raise BadConfigError(f"localizer.pixel_loss={cfg.pixel_loss!r}; choose one of {PIXEL_LOSSES}")
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    weight = _class_weights(target, cfg.pixel_loss == "balanced")
    if cfg.focal_gamma > 0:
        weight = weight * (1 - torch.exp(-bce)) ** cfg.focal_gamma
    if cfg.edge_weight > 0:
        weight = weight * (1 + cfg.edge_weight * boundary_band(target, max(1, target.shape[-1] // 64)))
    terms = {"pixel": (weight * bce).mean()}
    flat, probs = target.flatten(1), logits.sigmoid().flatten(1)
    has_region = flat.sum(1) > 0
    if cfg.dice_weight > 0 and has_region.any():
        dice = 1 - (2 * (probs * flat).sum(1) + 1) / (probs.sum(1) + flat.sum(1) + 1)
        terms["dice"] = cfg.dice_weight * dice[has_region].mean()
    return terms


def _spread(index: torch.Tensor, count: int) -> torch.Tensor:
    """At most ``count`` entries of ``index``, evenly spaced (deterministic, so a loss is a function of its inputs)."""
    if len(index) <= count:
        return index
    return index[torch.linspace(0, len(index) - 1, count, device=index.device).round().long()]


def pixel_contrast(features: torch.Tensor, target: torch.Tensor, temperature: float = 0.1,
                   per_class: int = 256) -> torch.Tensor:
    """Supervised pixel InfoNCE inside each forged image: forged pixels pull together and away from authentic ones.

    Each anchor's term is the supervised-contrastive loss (Khosla et al. 2020) minus ``log`` of its
    number of positives, so that it is 0 at perfect separation.

    ``features`` ``[B, C, h, w]``; ``target`` is pooled to ``h x w``. At most ``per_class`` pixels of each
    class are taken per image, evenly spaced in raster order. Images without both classes are skipped (zero when none has both).

    Example:
        >>> t = torch.zeros(1, 1, 8, 8); t[..., :4] = 1
        >>> apart = torch.cat([t, 1 - t], dim=1)
        >>> bool(pixel_contrast(apart, t) < pixel_contrast(torch.randn(1, 2, 8, 8), t))
        True
    """
    small = (F.adaptive_avg_pool2d(target, features.shape[-2:]) > 0.5).flatten(1)
    feats = F.normalize(features.flatten(2), dim=1)  # [B, C, N]
    losses = []
    for f, labels in zip(feats, small):
        forged, authentic = labels.nonzero().squeeze(1), (~labels).nonzero().squeeze(1)
        if len(forged) < 2 or len(authentic) < 2:
            continue
        chosen = torch.cat([_spread(forged, per_class), _spread(authentic, per_class)])
        z, y = f[:, chosen].T, labels[chosen]
        logits = z @ z.T / temperature
        eye = torch.eye(len(chosen), dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(eye, float("-inf"))
        positive = (y[:, None] == y[None]) & ~eye
        log_prob = logits.log_softmax(dim=1).masked_fill(~positive, 0.0)
        n_positive = positive.sum(1)
        # minus log(positives): the loss is 0 when each class collapses to a point far from the other
        losses.append((-(log_prob.sum(1) / n_positive) - n_positive.float().log()).mean())
    return torch.stack(losses).mean() if losses else features.sum() * 0.0


def localizer_loss(out: LocalizerOutput, target: torch.Tensor, cfg: LocalizerConfig) -> dict[str, torch.Tensor]:
    """Every configured term of the localizer's objective (their sum is the stage's ``mask`` loss)."""
    terms = pixel_terms(out.logits, target, cfg)
    if cfg.deep_supervision > 0 and out.levels:
        level_terms = []
        for logits in out.levels:
            small = (F.adaptive_avg_pool2d(target, logits.shape[-2:]) > 0.5).float()
            level_terms.append(sum(pixel_terms(logits, small, cfg).values()))
        terms["levels"] = cfg.deep_supervision * torch.stack(level_terms).mean()
    if cfg.image_loss > 0:
        is_fake = (target.flatten(1).amax(1) > 0).float()
        terms["image"] = cfg.image_loss * F.binary_cross_entropy_with_logits(out.image_logits, is_fake)
    if cfg.contrastive > 0:
        terms["contrastive"] = cfg.contrastive * pixel_contrast(out.features, target, cfg.contrastive_temperature)
    return terms


__all__ = ["PIXEL_LOSSES", "LocalizerOutput", "boundary_band", "localizer_loss", "pixel_contrast", "pixel_terms"]
