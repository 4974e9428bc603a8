"""Model configuration as plain dataclasses, with the presets ``tiny``, ``small`` and ``paper``.

- ``tiny``: unit tests. Random tiny vision side and a tiny random Llama with the SmolLM2 tokenizer.
- ``small``: CPU demo. A small vision side at 128 px (an 8 x 8 patch grid) and the packaged SmolLM2-135M-Instruct.
- ``paper``: one GPU. CLIP ViT-L/14-336 vision tower and a chat model (hub id or local dir).

Example:
    >>> cfg = get_config("tiny", image_size=64)
    >>> cfg.vision.image_size, cfg.language.source
    (64, 'tiny')
    >>> ForensixConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any

from forensix.errors import BadConfigError


@dataclass
class VisionConfig:
    """Semantic vision encoder: a ``transformers`` ViT built from this config, or loaded from ``source``.

    ``source`` is ``None`` (random init, trained by stage 1/2) or a local directory / hub id of a
    ViT or CLIP vision model. ``feature_layers`` are the blocks the FL-Expert compares with prompts.
    """

    image_size: int = 224
    patch_size: int = 16
    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 3
    intermediate_size: int = 384
    feature_layers: tuple[int, ...] = (1, 2, 3)
    source: str | None = None


@dataclass
class TraceConfig:
    """Forgery-trace branch: fixed SRM high-pass residuals + a learnable constrained conv, then a conv encoder."""

    channels: tuple[int, ...] = (8, 24, 32, 48, 96)
    constrained_filters: int = 3
    residual_clip: float = 3.0
    anomaly_window: int = 5  # local-anomaly layers after every downsampling stage (0: none)
    dct: bool = True  # a JPEG block-DCT stream joins the 1/8-scale level (forensix.models.dct; benchmarks/ablation.py)


@dataclass
class LocalizerConfig:
    """Object-agnostic forgery prompts and the FL-Expert decoder."""

    prompt_dim: int = 64
    prompt_context: int = 4
    temperature: float = 0.07
    decoder_channels: tuple[int, ...] = (64, 48, 32)
    dice_weight: float = 1.0
    focal_gamma: float = 0.0
    # The training objective's other terms (forensix.models.objectives; benchmarks/ablation.py measures each):
    pixel_loss: str = "bce"  # "bce" or "balanced" (per-image class balance, SAFIRE)
    edge_weight: float = 4.0  # extra BCE weight on a band around the mask's boundary (IML-ViT)
    deep_supervision: float = 0.5  # weight of the pixel terms at every decoder level (PSCC-Net)
    image_loss: float = 0.5  # weight of the image-level BCE of the top-1 % pixel logits (MVSS-Net)
    contrastive: float = 0.2  # weight of the per-image pixel contrast of the decoder features (FOCAL)
    contrastive_temperature: float = 0.1
    correlation_topk: int = 8  # self-correlation channels for copy-move at the finest decoder level (0: none)
    semantic_maps: bool = True  # the prompt-similarity maps of the vision layers join the decoder (False: trace evidence only)


@dataclass
class MaskEncoderConfig:
    """Mask encoder: mask + region features -> ``num_tokens`` mask tokens; ``layout`` is the pooled mask grid."""

    num_tokens: int = 4
    layout: int = 4
    hidden: int = 256


@dataclass
class ClueConfig:
    """Clue head: an MLP over the region summary; with ``evidence`` it also reads the pixel contrasts of
    :mod:`forensix.models.clue_evidence` (how the pixels inside the mask differ from those outside)."""

    evidence: bool = True
    hidden: int = 128


@dataclass
class LanguageConfig:
    """Language model source and the LoRA used in stage 3."""

    source: str = "tiny"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    system_prompt: str = "You are forensix, an image forensics assistant."
    max_new_tokens: int = 48
    max_prompt_chars: int = 2000
    max_train_tokens: int = 128  # training sequences are cut here (answers past what generation reaches); region words get extra room
    draft_tokens: int = 6  # n-gram draft length for single-image decoding (0: plain greedy decoding)
    no_repeat_ngram: int = 3  # an answer never repeats one of its own token n-grams (0: plain greedy decoding)


@dataclass
class ForensixConfig:
    """Everything needed to rebuild a :class:`~forensix.models.forensix_model.ForensixModel`."""

    preset: str = "custom"
    vision: VisionConfig = field(default_factory=VisionConfig)
    trace: TraceConfig = field(default_factory=TraceConfig)
    localizer: LocalizerConfig = field(default_factory=LocalizerConfig)
    mask_encoder: MaskEncoderConfig = field(default_factory=MaskEncoderConfig)
    clue: ClueConfig = field(default_factory=ClueConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    image_token_grid: int = 4
    clues_in_prompt: bool = True
    clue_threshold: float = 0.5
    clue_thresholds: tuple[float, ...] = ()  # one per clue (forensix.data.describe.CLUES), chosen on validation; () = clue_threshold
    region_in_prompt: bool = False  # region words of the mask the mask encoder reads; stage 3 turns them on
    mask_threshold: float = 0.5  # chosen on validation data after stage 2 (forensix.eval.calibration)
    mask_relative: float = 0.0  # a pixel is marked if prob >= max(mask_threshold, mask_relative * the image's max prob)
    # p_fake = sigmoid(scale * (log P(fake) - log P(real)) + mask_weight * logit(mask score) + bias): FakeScope's rule
    # when 1, 0, 0; fitted on validation data after stage 3 (forensix.eval.calibration.calibrate_detection)
    detection_scale: float = 1.0
    detection_mask_weight: float = 0.0
    detection_bias: float = 0.0
    # "native": the localizer reads the photo's own pixels; "resize": a copy at image_size; "multiscale" (the default,
    # best on benchmarks/native.py): the mean of both maps (forensix.models.native.multiscale)
    resolution: str = "multiscale"
    native_tile: int = 1024  # native photos larger than this on a side run as overlapping tiles (forensix.models.native)
    native_overlap: int = 128
    seed: int = 0

    @property
    def image_size(self) -> int:
        return self.vision.image_size

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (tuples become lists)."""
        return dataclasses.asdict(self)

    def architecture(self) -> dict[str, Any]:
        """The sections that define the network and its weights (not the read-out settings that calibration
        and the stages change, such as ``mask_threshold`` or ``region_in_prompt``).

        Example:
            >>> sorted(get_config("tiny").architecture())
            ['clue', 'image_token_grid', 'language', 'localizer', 'mask_encoder', 'trace', 'vision']
        """
        return {k: v for k, v in self.to_dict().items() if isinstance(v, dict) or k == "image_token_grid"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForensixConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`BadConfigError`.

        A config saved before the ``clue`` section existed describes the clue head without pixel evidence.
        """
        if isinstance(data, dict) and "clue" not in data:
            data = {**data, "clue": {"evidence": False}}
        return _from_dict(cls, data, "config")


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise BadConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BadConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name) if name in fields else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _from_dict(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or not all(_same_kind(v, d) for v in value for d in default[:1]):
                raise BadConfigError(f"{where}.{name}: expected a list like {list(default)}, got {value!r:.80}")
            kwargs[name] = tuple(value)
        else:
            if not _same_kind(value, default):
                raise BadConfigError(f"{where}.{name}: expected a {type(default).__name__} like {default!r}, got {value!r:.80}")
            kwargs[name] = value
    return cls(**kwargs)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` has the JSON type of ``default`` (ints pass as floats; ``None`` defaults take str or None)."""
    if default is None:
        return value is None or isinstance(value, str)
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, numbers.Real)
    if isinstance(default, int):
        return isinstance(value, numbers.Integral)
    return isinstance(value, type(default))


def _tiny() -> ForensixConfig:
    return ForensixConfig(
        preset="tiny",
        vision=VisionConfig(
            image_size=64, patch_size=16, hidden_size=32, num_layers=2, num_heads=2,
            intermediate_size=64, feature_layers=(0, 1),
        ),
        trace=TraceConfig(channels=(4, 4, 8, 8, 16), constrained_filters=2),
        localizer=LocalizerConfig(prompt_dim=16, prompt_context=2, decoder_channels=(16, 8, 8, 4, 4)),
        mask_encoder=MaskEncoderConfig(num_tokens=2, layout=2, hidden=32),
        language=LanguageConfig(source="tiny", lora_r=4, lora_alpha=8, max_new_tokens=8, max_train_tokens=96),
        image_token_grid=2,
    )


def _small() -> ForensixConfig:
    # 128 px: on a CPU the localizer learned as much per step as at 224 px for a third of the cost.
    return ForensixConfig(
        preset="small", vision=VisionConfig(image_size=128), language=LanguageConfig(source="smollm2-135m")
    )


def _paper() -> ForensixConfig:
    return ForensixConfig(
        preset="paper",
        vision=VisionConfig(
            image_size=336, patch_size=14, hidden_size=1024, num_layers=24, num_heads=16,
            intermediate_size=4096, feature_layers=(6, 12, 18, 23), source="openai/clip-vit-large-patch14-336",
        ),
        trace=TraceConfig(channels=(16, 48, 64, 128, 256)),
        localizer=LocalizerConfig(prompt_dim=256, prompt_context=8, decoder_channels=(256, 128, 64, 48, 16)),
        mask_encoder=MaskEncoderConfig(num_tokens=8, layout=6, hidden=1024),
        language=LanguageConfig(
            source="Qwen/Qwen2.5-1.5B-Instruct", lora_r=16, lora_alpha=32, max_new_tokens=128, max_train_tokens=512
        ),
        image_token_grid=12,
    )


PRESETS = {"tiny": _tiny, "small": _small, "paper": _paper}

#: Named training recipes: steps per stage over the stage defaults of the preset. ``release`` is how the
#: shipped ``forensix-small`` was trained (about 1.5 hours on 2 CPU cores; ``--resume`` continues it);
#: ``default`` keeps the preset's own steps (the demo's).
RECIPES: dict[str, dict[int, int]] = {"default": {}, "release": {1: 100, 2: 6000, 3: 150}}


def get_config(preset: str = "small", **overrides: Any) -> ForensixConfig:
    """The config of a preset, with top-level or nested overrides (``vision={"image_size": 128}``).

    Raises :class:`BadConfigError` for an unknown preset or override key.
    """
    if preset not in PRESETS:
        raise BadConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    data = PRESETS[preset]().to_dict()
    for key, value in overrides.items():
        if key == "image_size":
            data["vision"]["image_size"] = value
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return ForensixConfig.from_dict(data)


__all__ = [
    "PRESETS",
    "RECIPES",
    "ClueConfig",
    "ForensixConfig",
    "LanguageConfig",
    "LocalizerConfig",
    "MaskEncoderConfig",
    "TraceConfig",
    "VisionConfig",
    "get_config",
]
