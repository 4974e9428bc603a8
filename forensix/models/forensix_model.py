"""ForensixModel: vision encoder + forgery-trace branch + FL-Expert + mask encoder + clue head + projector + LM.

Data flow (the assembly of the vision side is :mod:`forensix.models.vision_side`)::

    image -> vision encoder --+--> FL-Expert (prompts, trace skips) -> mask logits -> mask encoder -> mask tokens
            trace branch  ----+--> fused patch tokens -> projector -> image tokens
    chat template with <image>/<mask> slots filled with those embeddings -> language model -> text
    answer-token logits after the detection question -> p_fake (FakeScope rule)

Example:
    >>> import numpy as np
    >>> model = ForensixModel.from_config("tiny")
    >>> a = model.analyze(np.zeros((64, 80, 3), np.uint8))
    >>> a.mask_probs.shape, 0.0 <= a.p_fake <= 1.0
    ((64, 80), True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from forensix.baselines.base import Localization
from forensix.config import ForensixConfig, get_config
from forensix.data.conversations import DETECTION_QUESTION, analysis_question
from forensix.data.describe import CLUES, phrasebook
from forensix.errors import BadPromptError
from forensix.eval.calibration import image_threshold
from forensix.hooks import Cache, HookedModule, add_output_hook_point, caching_hooks, install_block_hooks, resolve_names
from forensix.models import detection, generation, persistence, prompter, vision_side
from forensix.models.analysis import Analysis
from forensix.models.clue_evidence import CONTRASTS
from forensix.models.clue_head import ClueHead
from forensix.models.conversation import Conversation
from forensix.models.decoding import NGramDrafts
from forensix.models.fl_expert import FLExpert
from forensix.models.heads import HeadRegistry
from forensix.models.language import answer_token_ids, load_language_model
from forensix.models.lora import inject_lora
from forensix.models.mask_encoder import MaskEncoder
from forensix.models.modes import eval_mode
from forensix.models.native import multiscale, native_logits, pooled
from forensix.models.objectives import LocalizerOutput, localizer_loss
from forensix.models.outputs import Reply, VisionOutput
from forensix.models.pixels import as_pixels, image_arrays, mask_tensor, probability_maps, resized
from forensix.models.projector import Projector
from forensix.models.prompting import IGNORE, IMAGE_SLOT, TokenBatch, tokenize
from forensix.models.prompts import ForgeryPrompts
from forensix.models.trace import TraceBranch
from forensix.models.vision import VisionEncoder

#: Pieces of the model, in data-flow order; stage specs and parameter tables use these names.
PIECES = ("vision", "trace", "fusion", "prompts", "fl_expert", "mask_encoder", "clue_head", "projector", "lm", "heads")


class ForensixModel(HookedModule):
    """The composite IFDL model; see the module docstring. Build with :meth:`from_config`."""

    def __init__(self, config: ForensixConfig, lm_bundle=None) -> None:
        super().__init__()
        self.config = config
        torch.manual_seed(config.seed)
        bundle = lm_bundle or load_language_model(config.language.source, seed=config.seed)
        self.tokenizer = bundle.tokenizer
        self.lm_name = bundle.name
        v = config.vision
        self.vision = VisionEncoder(v)
        width = self.vision.width
        self.trace = TraceBranch(config.trace, width)
        self.fusion = nn.LayerNorm(width)
        self.hook_fused = add_output_hook_point(self.fusion, "vision.fused")
        self.prompts = ForgeryPrompts(config.localizer.prompt_dim, config.localizer.prompt_context)
        self.fl_expert = FLExpert(config.localizer, width, len(v.feature_layers), config.trace.channels)
        lm_width = bundle.model.get_input_embeddings().embedding_dim
        me = config.mask_encoder
        self.mask_encoder = MaskEncoder(width, lm_width, me.num_tokens, me.layout, me.hidden)
        evidence = len(CONTRASTS) if config.clue.evidence else 0
        self.clue_head = ClueHead(2 * width + 4 + me.layout**2 + width + evidence, len(CLUES), config.clue.hidden)
        self.projector = Projector(width, lm_width, config.image_token_grid)
        self.lm = bundle.model
        install_block_hooks(self.lm, "lm.layers")
        add_output_hook_point(self.lm.get_input_embeddings(), "lm.embed_tokens")
        add_output_hook_point(self.lm.get_output_embeddings(), "lm.logits")
        self.heads = HeadRegistry()
        self.lora_enabled = False
        self._phrasebook_ids = [self.tokenizer(" " + p, add_special_tokens=False)["input_ids"] for p in phrasebook()]
        self.reset_draft_memory()
        self._answer_ids = answer_token_ids(self.tokenizer, ("fake", "real"))
        self.setup_hooks()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: str | ForensixConfig = "small", **overrides: Any) -> ForensixModel:
        """Build from a preset name (``tiny``/``small``/``paper``) or a config; untrained vision side."""
        cfg = get_config(config, **overrides) if isinstance(config, str) else config
        return cls(cfg)

    @property
    def device(self) -> torch.device:
        return self.fusion.weight.device

    @property
    def name(self) -> str:
        return f"forensix-{self.config.preset}"

    def reset_draft_memory(self) -> None:
        """Forget earlier answers: the n-gram drafts of single-image decoding start again from the
        data engine's phrasebook (drafts change speed only, never the output)."""
        n = self.config.language.draft_tokens
        self._drafts = NGramDrafts(max_draft=n) if n > 0 else None
        if self._drafts is not None:
            for ids in self._phrasebook_ids:
                self._drafts.add(ids)

    # ------------------------------------------------------------------ LoRA
    def enable_lora(self) -> None:
        """Inject LoRA adapters (``peft``) into the language model's attention projections (stage 3)."""
        if not self.lora_enabled:
            inject_lora(self.lm, self.config.language, self.config.seed + 3)
            self.lora_enabled = True
            self.setup_hooks()

    # ------------------------------------------------------------------ vision side
    def preprocess(self, images: Any) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Images (arrays, PIL, paths, tensors) -> ``[B, 3, S, S]`` at the model's size, plus original sizes.

        This is the copy the semantic ViT and the language side read; with ``resolution="native"`` the
        localizer reads the photos themselves (:meth:`native_masks`).
        """
        arrays = image_arrays(images)
        pixels = [resized(as_pixels(a), self.config.image_size) for a in arrays]
        return torch.cat(pixels).to(self.device), [a.shape[:2] for a in arrays]

    def localizer_output(self, pixels: torch.Tensor) -> LocalizerOutput:
        """The FL-Expert's whole output for images at their own size (mask logits ``[B, 1, H, W]``, the deep
        supervision levels, the image logit and the decoder features the contrastive term shapes): the ViT
        reads a copy at the model's size, the trace branch and the FL-Expert the pixels themselves.

        Example:
            >>> out = ForensixModel.from_config("tiny").eval().localizer_output(torch.zeros(1, 3, 64, 64))
            >>> out.logits.shape[-2:], out.features.dim()
            (torch.Size([64, 64]), 4)
        """
        vis = self.vision(resized(pixels, self.config.image_size))
        trace = self.trace(pixels, vis.grid)
        return self.fl_expert([p + trace.tokens for p in vis.layer_patches], self.prompts(), trace.features, vis.grid)

    def localizer_logits(self, pixels: torch.Tensor) -> torch.Tensor:
        """Mask logits ``[B, 1, H, W]`` of images at their own size (:meth:`localizer_output`)."""
        return self.localizer_output(pixels).logits

    @torch.no_grad()
    def native_masks(self, images: Any) -> list[torch.Tensor]:
        """The localizer's probabilities ``[1, 1, H, W]`` per image at its own pixels (whole, or native tiles
        stitched when a side exceeds ``config.native_tile``; see :mod:`forensix.models.native`), averaged with
        the model-size copy's map when ``config.resolution`` is ``"multiscale"``.

        Example:
            >>> model = ForensixModel.from_config("tiny")
            >>> [m.shape[-2:] for m in model.native_masks([np.zeros((37, 90, 3), np.uint8)])]
            [torch.Size([37, 90])]
        """
        with eval_mode(self):
            photos = [as_pixels(a) for a in image_arrays(images)]
            maps = [native_logits(self, x).sigmoid() for x in photos]
            if self.config.resolution == "multiscale":
                size = self.config.image_size
                maps = [multiscale(m, self.localizer_logits(resized(x, size).to(self.device)).sigmoid())
                        for m, x in zip(maps, photos)]
            return maps

    def region_for(self, image: Any) -> torch.Tensor | None:
        """The mask the language side reads for ``image`` when it is not computed from the model's copy:
        the native (or multiscale) mask pooled to the model's size, else ``None`` (``resolution="resize"``).

        Explanation tools pass it to :meth:`encode_image` so that they replay exactly what :meth:`analyze` saw.
        """
        return None if self.config.resolution == "resize" else pooled(self.native_masks(image), self.config.image_size).to(self.device)

    def encode_image(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> VisionOutput:
        """Run the vision side on ``[B, 3, H, W]`` images in ``[0, 1]``.

        Returns a :class:`~forensix.models.outputs.VisionOutput`: mask logits, mask score, clue logits,
        mask tokens, image tokens and ``region_mask``, the mask the mask encoder read (``mask`` when
        given, e.g. the ground truth in stage 2, else the predicted probabilities).
        """
        return vision_side.assemble(self, images, mask)[0]

    # ------------------------------------------------------------------ language side
    def clue_text(self, clue_logits: torch.Tensor) -> list[str]:
        """The forgery prompter's words per image (:func:`forensix.models.prompter.clue_text`)."""
        return prompter.clue_text(clue_logits, self.config)

    def region_text(self, region_mask: torch.Tensor) -> list[str]:
        """The region prompter's words per image (:func:`forensix.models.prompter.region_text`)."""
        return prompter.region_text(region_mask, self.config)

    def train_token_limit(self) -> int:
        """Where training sequences are cut (:func:`forensix.models.prompter.train_token_limit`)."""
        return prompter.train_token_limit(self.config)

    def prompter_words(self, vision: VisionOutput) -> list[tuple[str, str]]:
        """What follows the mask tokens in each prompt: ``(region words, clue words)`` (from :meth:`encode_image`)."""
        return prompter.prompter_words(vision, self.config)

    def tokenize(
        self, conversations: Sequence[list[dict]], prompter_words: Sequence[tuple[str, str]], add_generation_prompt: bool = False,
        side: str = "right", max_tokens: int | None = None,
    ) -> TokenBatch:
        """Encode conversations with image/mask slots into a padded :class:`TokenBatch` (cut at ``max_tokens``).

        ``prompter_words`` (``(region words, clue words)`` per conversation, from :meth:`prompter_words`) follow the mask tokens.
        """
        return tokenize(self.tokenizer, self.config, conversations, prompter_words, add_generation_prompt, side, max_tokens)

    def embed(self, tokens: TokenBatch, vision: VisionOutput) -> torch.Tensor:
        """Input embeddings with the image and mask slots overwritten by the vision side's tokens."""
        embeds = self.lm.get_input_embeddings()(tokens.ids.to(self.device))
        image_slots = tokens.image_slots.to(self.device)
        embeds = embeds.masked_scatter(image_slots.unsqueeze(-1), vision.image_tokens.to(embeds.dtype))
        has_mask = tokens.mask_slots.any(dim=1)
        if has_mask.any():
            mask_slots = tokens.mask_slots.to(self.device)
            embeds = embeds.masked_scatter(mask_slots.unsqueeze(-1), vision.mask_tokens[has_mask.to(self.device)].to(embeds.dtype))
        return embeds

    def _answers(self) -> tuple[int, int]:
        return self._answer_ids["fake"][0], self._answer_ids["real"][0]

    def answer_log_probs(self, last_logits: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``[B, 2]`` of the answers ("fake", "real") from next-token logits ``[B, V]``.

        Every answer word is a single token for SmolLM2's tokenizer; other tokenizers are checked at load.
        """
        return detection.answer_log_probs(last_logits, self._answers())

    def detection_margin(self, last_logits: torch.Tensor) -> torch.Tensor:
        """``log P(fake) - log P(real)`` of the answer words, ``[B]``: the FakeScope evidence before calibration."""
        return detection.detection_margin(last_logits, self._answers())

    def p_fake_from_logits(self, last_logits: torch.Tensor, mask_score: torch.Tensor | None = None) -> torch.Tensor:
        """FakeScope's P(fake) from next-token logits, calibrated with ``mask_score`` ``[B]`` (``vision.mask_score``)
        as :mod:`forensix.models.detection` describes."""
        return detection.calibrated_p_fake(self.detection_margin(last_logits), self.config, mask_score)

    def verdict_token(self, first_logits: torch.Tensor, mask_score: torch.Tensor) -> list[int | None]:
        """Per row of next-token logits ``[B, V]``, the answer word that the calibrated ``p_fake`` decides where
        the language model's own first word is one (else ``None``); decoding starts with it, so the text says
        what ``p_fake`` says.

        Example:
            >>> model = ForensixModel.from_config("tiny")
            >>> logits = torch.zeros(1, model.lm.config.vocab_size); logits[0, model._answer_ids["real"][0]] = 9.0
            >>> model.verdict_token(logits, torch.ones(1)) == [model._answer_ids["real"][0]]
            True
        """
        return detection.verdict_tokens(first_logits, self.p_fake_from_logits(first_logits, mask_score), self._answers())

    # ------------------------------------------------------------------ training forward
    def forward(
        self, batch: dict[str, Any], losses: Iterable[str] = ("lm", "mask", "clue"), mask_source: str = "predicted",
        lm_subbatch: int | None = None,
    ) -> dict[str, Any]:
        """Losses of a training batch (from :func:`forensix.data.datasets.collate_samples`).

        ``losses`` picks the terms (``lm``, ``mask``, ``clue`` and any head name); ``mask_source``
        is ``"predicted"`` or ``"gt"`` (the ground-truth mask feeds the mask encoder);
        ``lm_subbatch`` computes the language-model term on the first ``k`` samples only (the
        language model costs far more per sample than the vision side).
        Returns ``{"loss": total, "losses": {term: value}, "mask_logits", "clue_logits"}``.
        """
        losses = tuple(losses)
        images = batch["image"].to(self.device)
        gt_mask = batch["mask"].to(self.device) if "mask" in batch else None
        vision, localizer, _ = vision_side.assemble(self, images, gt_mask if mask_source == "gt" else None)
        terms: dict[str, torch.Tensor] = {}
        if "mask" in losses:
            terms["mask"] = sum(localizer_loss(localizer, gt_mask, self.config.localizer).values())
        if "clue" in losses:
            terms["clue"] = F.binary_cross_entropy_with_logits(vision.clue_logits, batch["clues"].to(self.device))
        if "lm" in losses:
            k = lm_subbatch or len(batch["messages"])
            lm_vision = vision.rows(0, k)
            limit = self.train_token_limit()
            tokens = self.tokenize(batch["messages"][:k], self.prompter_words(lm_vision), max_tokens=limit)
            if not (tokens.labels[:, 1:] != IGNORE).any():
                raise BadPromptError(f"every answer of this batch was cut: its prompts fill all {limit} training "
                                     "tokens; raise config.language.max_train_tokens or shorten the prompts")
            embeds = self.embed(tokens, lm_vision)
            out = self.lm(inputs_embeds=embeds, attention_mask=tokens.attention_mask.to(self.device), use_cache=False)
            logits = out.logits[:, :-1]
            terms["lm"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tokens.labels[:, 1:].reshape(-1).to(self.device))
        terms.update(self.heads.losses(batch, [t for t in losses if t in self.heads]))
        return {
            "loss": sum(terms.values()) if terms else torch.zeros((), device=self.device),
            "losses": terms,
            "mask_logits": vision.mask_logits,
            "clue_logits": vision.clue_logits,
        }

    # ------------------------------------------------------------------ inference
    def _prompt_for(self, question: str | None) -> list[dict]:
        question = analysis_question() if question is None else question
        if not isinstance(question, str) or not question.strip():
            raise BadPromptError("question: empty; ask something, e.g. 'Is this image real or fake?'")
        if IMAGE_SLOT not in question:
            question = f"{IMAGE_SLOT} {question}"
        return [{"role": "user", "content": question}]

    def _answer_logits(self, vision: VisionOutput, question: str = DETECTION_QUESTION) -> torch.Tensor:
        """Next-token logits ``[B, V]`` after the prompt ``question``: where the answer word's probabilities are read."""
        n = vision.image_tokens.shape[0]
        tokens = self.tokenize([self._prompt_for(question)] * n, self.prompter_words(vision), True)
        logits = self.lm(inputs_embeds=self.embed(tokens, vision), attention_mask=tokens.attention_mask.to(self.device),
                         use_cache=False).logits
        return logits[torch.arange(n), torch.tensor(tokens.lengths) - 1]

    def p_fake(self, vision: VisionOutput, question: str = DETECTION_QUESTION) -> torch.Tensor:
        """``p_fake`` ``[B]`` per image of :meth:`encode_image`'s output, from one language-model pass over
        the detection prompt ``question`` (:meth:`p_fake_from_logits`); differentiable outside ``no_grad``.

        Example:
            >>> model = ForensixModel.from_config("tiny")
            >>> model.p_fake(model.encode_image(torch.rand(2, 3, 64, 64))).shape
            torch.Size([2])
        """
        return self.p_fake_from_logits(self._answer_logits(vision, question), vision.mask_score)

    def detection_evidence(self, images: Any, question: str = DETECTION_QUESTION, batch_size: int = 16) -> np.ndarray:
        """What ``p_fake``'s calibration combines, ``[n, 2]`` per image: the FakeScope margin
        ``log P(fake) - log P(real)`` and the logit of the localizer's mask score.

        Example:
            >>> ForensixModel.from_config("tiny").detection_evidence([np.zeros((64, 64, 3), np.uint8)] * 2).shape
            (2, 2)
        """
        return detection.detection_evidence(self, images, question, batch_size)

    def detect(self, images: Any, question: str = DETECTION_QUESTION, batch_size: int = 16,
               masks: Sequence[Any] | None = None) -> np.ndarray:
        """Batched ``p_fake`` for images by the FakeScope token-probability rule.

        ``masks`` (one per image, each of its image's size) replace the predicted masks that the
        mask encoder reads: ask about a region you drew, or give the true masks to see how well
        the language model would detect with a perfect localizer.

        Example:
            >>> model = ForensixModel.from_config("tiny")
            >>> model.detect([np.zeros((64, 64, 3), np.uint8)] * 3).shape
            (3,)
            >>> model.detect([np.zeros((64, 64, 3), np.uint8)], masks=[np.eye(64, dtype=bool)]).shape
            (1,)
        """
        return detection.detect(self, images, question, batch_size, masks)

    def preprocess_masks(self, masks: Sequence[Any], sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Masks, one per image of the given ``sizes``, -> ``[B, 1, S, S]`` in {0, 1} at the model's size."""
        return mask_tensor(masks, sizes, self.config.image_size).to(self.device)

    def generate_replies(
        self, vision: VisionOutput, conversations: Sequence[list[dict]], max_new_tokens: int | None = None,
        slot_attention: bool = False,
    ) -> list[Reply]:
        """Greedy :class:`~forensix.models.outputs.Reply` records, one per image and conversation
        (:func:`forensix.models.generation.generate_replies`)."""
        return generation.generate_replies(self, vision, conversations, max_new_tokens, slot_attention)

    @torch.no_grad()
    def analyze(
        self, image: Any, question: str | None = None, *, max_new_tokens: int | None = None, capture_attention: bool = True
    ) -> Analysis:
        """Explained analysis of one image: text, mask (probabilities and binary), ``p_fake``, clues.

        With ``capture_attention`` the vision encoder's attention patterns and the language model's
        attention from every generated token to the image and mask slots and the region words are recorded during this
        one pass (what grounding needs: no second pass).
        """
        return self.analyze_batch([image], question, max_new_tokens=max_new_tokens, capture_attention=capture_attention)[0]

    @torch.no_grad()
    def analyze_batch(
        self, images: Sequence[Any], question: str | None = None, *, max_new_tokens: int | None = None,
        capture_attention: bool = False,
    ) -> list[Analysis]:
        """:meth:`analyze` for several images in one batched generation (attention capture: one image only)."""
        arrays = image_arrays(list(images))
        messages = self._prompt_for(question)
        vision_cache = Cache()
        watch = caching_hooks(vision_cache, resolve_names("vision.blocks.*.attn.pattern", self._hook_points)) if capture_attention else []
        with eval_mode(self):
            with self.hooks(watch):  # the copy's ViT pass comes first: its attention is the first record
                pixels, vision, mask_maps = vision_side.encode_images(self, arrays)
            replies = self.generate_replies(vision, [messages] * len(arrays), max_new_tokens, slot_attention=capture_attention)
        clue_probs = vision.clue_logits.sigmoid().tolist()
        grid = (pixels.shape[-2] // self.vision.patch_size, pixels.shape[-1] // self.vision.patch_size)
        analyses = []
        for i, reply in enumerate(replies):
            tokens = reply.tokens
            analyses.append(Analysis(
                image=arrays[i],
                question=messages[0]["content"],
                text=reply.text,
                mask_probs=mask_maps[i],
                threshold=self.mask_cut(mask_maps[i]),
                p_fake=float(self.p_fake_from_logits(reply.first_logits[None], vision.mask_score[i : i + 1])[0]),
                clue_probs=dict(zip(CLUES, clue_probs[i])),
                clue_threshold=self.config.clue_threshold,
                clue_thresholds=prompter.clue_cuts(self.config),
                prompt_ids=tokens.ids[0].tolist(),
                generated_ids=reply.ids,
                generated_tokens=[self.tokenizer.decode([t]) for t in reply.ids],
                image_positions=tokens.image_slots[0].nonzero()[:, 0].tolist(),
                mask_positions=tokens.mask_slots[0].nonzero()[:, 0].tolist(),
                region_positions=tokens.region_slots[0].nonzero()[:, 0].tolist(),
                image_token_grid=(self.config.image_token_grid, self.config.image_token_grid),
                slot_attention=reply.slot_attention,
                vision_attention=[_first_record(vision_cache[n])[i] for n in vision_cache] if capture_attention else None,
                vision_grid=grid,
                model_name=self.name,
            ))
        return analyses

    def mask_probabilities(self, images: Any) -> list[np.ndarray]:
        """The localizer's forgery probability per pixel, one ``[H, W]`` float32 map per image at its own size.

        Example:
            >>> model = ForensixModel.from_config("tiny")
            >>> [p.shape for p in model.mask_probabilities([np.zeros((48, 40, 3), np.uint8)] * 2)]
            [(48, 40), (48, 40)]
        """
        with torch.no_grad(), eval_mode(self):
            if self.config.resolution != "resize":
                return [m[0, 0].numpy().astype(np.float32) for m in self.native_masks(images)]
            pixels, sizes = self.preprocess(images)
            return probability_maps(self.encode_image(pixels).mask_logits, sizes)

    def localize(self, image: Any) -> Localization:
        """Mask heatmap and ``p_fake`` in the common :class:`~forensix.baselines.base.Localization` form."""
        with torch.no_grad(), eval_mode(self):
            _, vision, maps = vision_side.encode_images(self, image)
            heatmap, score = maps[0], float(self.p_fake(vision)[0])
        return Localization(heatmap=heatmap, mask=(heatmap >= self.mask_cut(heatmap)).astype(np.uint8), score=score)

    def mask_cut(self, probs: np.ndarray) -> float:
        """The threshold one image's mask probabilities are cut at: ``config.mask_threshold``, raised to
        ``config.mask_relative`` times the map's maximum (both chosen on validation data after stage 2).

        Example:
            >>> model = ForensixModel.from_config("tiny")
            >>> model.config.mask_threshold, model.config.mask_relative = 0.3, 0.5
            >>> model.mask_cut(np.array([0.9, 0.2])), model.mask_cut(np.array([0.4, 0.2]))
            (0.45, 0.3)
        """
        return image_threshold(probs, self.config.mask_threshold, self.config.mask_relative)

    def chat(self, image: Any) -> Conversation:
        """A multi-turn conversation about one image that keeps its history.

        Example:
            >>> conv = ForensixModel.from_config("tiny").chat(np.zeros((64, 64, 3), np.uint8))
            >>> isinstance(conv.ask("Is this image real or fake?"), str), len(conv.history)
            (True, 2)
        """
        return Conversation(self, image)

    # ------------------------------------------------------------------ hooks (see forensix.hooks.HookedModule)
    def _attention_roots(self) -> dict[str, nn.Module]:
        return {"vision.": self.vision.model, "lm.": self.lm}

    def _cached_call(self, inputs: Any, **kwargs: Any) -> Any:
        """:meth:`run_with_cache` runs a training batch (dict) through :meth:`forward`, an image through
        :meth:`analyze` (recording every generation step)."""
        return self.forward(inputs, **kwargs) if isinstance(inputs, dict) else self.analyze(inputs, capture_attention=False, **kwargs)

    # ------------------------------------------------------------------ heads
    def add_head(self, name: str, module: nn.Module, hook: str, *, target: str | None = None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> nn.Module:
        """Attach a new head reading hook point ``hook``; see :class:`~forensix.models.heads.HeadRegistry`."""
        resolve_names(hook, self._hook_points)
        module.to(self.device)
        self.heads.add(name, module, self._hook_points[hook], target=target, loss_fn=loss_fn)
        return module

    def remove_head(self, name: str) -> None:
        """Detach and delete the head ``name``."""
        self.heads.remove(name)

    # ------------------------------------------------------------------ persistence (forensix.models.persistence)
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to restore the model (:func:`forensix.models.persistence.trainable_state`)."""
        return persistence.trainable_state(self)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + a sha256 manifest, atomically."""
        return persistence.save_model(self, path)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> ForensixModel:
        """Load a directory written by :meth:`save_pretrained`, or a released model by name
        (``"forensix-small"``, :mod:`forensix.models.released`); verified, no pickle."""
        return persistence.load_model(cls, path)


def _first_record(recorded: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """The first pass's tensor of a hook point (tiled native photos run the ViT again for each tile)."""
    return recorded[0] if isinstance(recorded, list) else recorded


__all__ = ["PIECES", "ForensixModel"]
