"""The result of :meth:`ForensixModel.analyze`: text, mask, p_fake, clues, and token bookkeeping.

It renders itself in Jupyter (``_repr_html_``: the image with the predicted mask outlined, the
answer, ``p_fake`` and clue chips, all inline: no CDN) and carries what the explanation tools need:
prompt and generated token ids, the positions of the image and mask slots, and (when captured
during generation) the attention of every generated token to those slots.

Example:
    >>> import numpy as np
    >>> a = Analysis(image=np.zeros((8, 8, 3), np.uint8), question="q", text="fake.",
    ...              mask_probs=np.full((8, 8), 0.9, np.float32), p_fake=0.8)
    >>> a.verdict, int(a.mask.sum()), "p_fake" in a._repr_html_()
    ('fake', 64, True)
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import torch

from forensix.inline import heat_rgb, overlay_mask, png_data_uri


@dataclass
class Analysis:
    """Explained analysis of one image."""

    image: np.ndarray
    question: str
    text: str
    mask_probs: np.ndarray
    p_fake: float
    threshold: float = 0.5
    clue_probs: dict[str, float] = field(default_factory=dict)
    clue_threshold: float = 0.5
    clue_thresholds: dict[str, float] = field(default_factory=dict)  # per clue where calibrated, else clue_threshold
    prompt_ids: list[int] = field(default_factory=list)
    generated_ids: list[int] = field(default_factory=list)
    generated_tokens: list[str] = field(default_factory=list)
    image_positions: list[int] = field(default_factory=list)
    mask_positions: list[int] = field(default_factory=list)
    region_positions: list[int] = field(default_factory=list)  # prompt positions of the region words
    image_token_grid: tuple[int, int] = (1, 1)
    slot_attention: torch.Tensor | None = None  # [generated, layers, heads, image + mask slots + region words]
    vision_attention: list[torch.Tensor] | None = None  # per vision block: [heads, tokens, tokens]
    vision_grid: tuple[int, int] = (1, 1)  # the vision encoder's patch grid for this image
    model_name: str = ""

    @property
    def mask(self) -> np.ndarray:
        """Binary mask (uint8, 1 = manipulated) at ``threshold``."""
        return (self.mask_probs >= self.threshold).astype(np.uint8)

    @property
    def clues(self) -> list[str]:
        """Predicted clue words, most probable first."""
        chosen = [(p, c) for c, p in self.clue_probs.items() if p >= self.clue_thresholds.get(c, self.clue_threshold)]
        return [c for _, c in sorted(chosen, reverse=True)]

    @property
    def verdict(self) -> str:
        """``"fake"`` when ``p_fake >= 0.5`` else ``"real"``."""
        return "fake" if self.p_fake >= 0.5 else "real"

    def __repr__(self) -> str:
        h, w = self.mask_probs.shape
        return (f"Analysis(verdict={self.verdict!r}, p_fake={self.p_fake:.3f}, mask_area={self.mask.mean():.3f}, "
                f"size={w}x{h}, clues={self.clues}, text={self.text[:60]!r})")

    def to_dict(self) -> dict:
        """JSON-safe summary (no arrays)."""
        return {
            "question": self.question, "text": self.text, "p_fake": self.p_fake, "verdict": self.verdict,
            "clues": self.clues, "mask_area": float(self.mask.mean()), "model": self.model_name,
        }

    def _repr_html_(self) -> str:
        shown = overlay_mask(self.image, self.mask)
        chips = "".join(
            f'<span style="background:#fde2e2;border-radius:8px;padding:1px 6px;margin:2px">{html.escape(c)}</span>'
            for c in self.clues
        ) or "<i>none</i>"
        colour = "#c0392b" if self.verdict == "fake" else "#1e8449"
        return (
            '<div style="font-family:sans-serif;display:flex;gap:12px;align-items:flex-start">'
            f'<figure style="margin:0"><img src="{png_data_uri(shown)}" style="width:224px;image-rendering:pixelated">'
            "<figcaption>image, predicted mask outlined</figcaption></figure>"
            f'<figure style="margin:0"><img src="{png_data_uri(heat_rgb(self.mask_probs))}" style="width:224px">'
            "<figcaption>mask probabilities</figcaption></figure>"
            '<div style="max-width:420px">'
            f'<div><b style="color:{colour}">{self.verdict.upper()}</b> &nbsp; p_fake = {self.p_fake:.3f}</div>'
            f'<div style="background:#eee;width:200px;height:8px"><div style="background:{colour};width:{200 * self.p_fake:.0f}px;height:8px"></div></div>'
            f"<p><b>Q:</b> {html.escape(self.question)}<br><b>A:</b> {html.escape(self.text)}</p>"
            f"<div><b>clues:</b> {chips}</div>"
            f'<div style="color:#777">mask area {100 * self.mask.mean():.1f}% · {html.escape(self.model_name)}</div>'
            "</div></div>"
        )
