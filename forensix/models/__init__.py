"""Model pieces and the composite :class:`ForensixModel`."""

from forensix.models.analysis import Analysis
from forensix.models.conversation import Conversation
from forensix.models.forensix_model import PIECES, ForensixModel
from forensix.models.language import LanguageModelBundle, answer_token_ids, load_language_model

__all__ = ["PIECES", "Analysis", "Conversation", "ForensixModel", "LanguageModelBundle", "answer_token_ids", "load_language_model"]
