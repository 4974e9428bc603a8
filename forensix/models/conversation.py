"""A multi-turn chat about one image that keeps its history (what ``ForensixModel.chat`` returns).

Example:
    >>> import numpy as np
    >>> from forensix.models.forensix_model import ForensixModel
    >>> conv = Conversation(ForensixModel.from_config("tiny"), np.zeros((64, 64, 3), np.uint8))
    >>> isinstance(conv.ask("Is this image real or fake?", max_new_tokens=4), str), len(conv.history)
    (True, 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from forensix.errors import BadPromptError
from forensix.models.modes import eval_mode
from forensix.models.vision_side import encode_images

if TYPE_CHECKING:
    from forensix.models.forensix_model import ForensixModel


class Conversation:
    """Multi-turn chat about one image; ``ask`` appends the question and the reply to ``history``."""

    def __init__(self, model: ForensixModel, image: Any) -> None:
        self.model = model
        with torch.no_grad(), eval_mode(model):
            self.pixels, self.vision, _ = encode_images(model, image)
        self.history: list[dict] = []

    def ask(self, question: str, max_new_tokens: int | None = None) -> str:
        """The model's reply to ``question``, asked after the history so far."""
        if not isinstance(question, str) or not question.strip():
            raise BadPromptError("question: empty; ask something about the image")
        content = question if self.history else self.model._prompt_for(question)[0]["content"]
        messages = [*self.history, {"role": "user", "content": content}]
        with eval_mode(self.model):
            reply = self.model.generate_replies(self.vision, [messages], max_new_tokens)[0]
        self.history = [*messages, {"role": "assistant", "content": reply.text or "..."}]
        return reply.text


__all__ = ["Conversation"]
