"""Data layer: image/mask I/O, source photos, synthetic forgeries, texts, conversations, datasets.

Example:
    >>> from forensix.data import ForgeryGenerator, describe
    >>> s = ForgeryGenerator(size=64, seed=0).sample(0)
    >>> isinstance(describe(s.record, s.mask, "full", __import__("numpy").random.default_rng(0)), str)
    True
"""

from forensix.data.conversations import (
    DETECTION_QUESTION,
    analysis_question,
    detection_answer,
    stage1_messages,
    stage2_messages,
    stage3_messages,
)
from forensix.data.datasets import (
    FolderDataset,
    ManifestDataset,
    SyntheticForgeryDataset,
    SyntheticImageDataset,
    collate_samples,
    load_dataset,
    to_tensor_image,
    to_tensor_mask,
)
from forensix.data.describe import (
    CLUES,
    GRID_CELLS,
    caption,
    clue_vector,
    clues_for,
    describe,
    explanation,
    localized_description,
    location_phrase,
    mask_cells,
    parse_location,
    parse_verdict,
    shape_phrase,
    size_phrase,
    verdict,
)
from forensix.data.forge import (
    ALL_OPS,
    ALL_SHAPES,
    ForgeryGenerator,
    ForgeryRecord,
    Sample,
    apply_postprocess,
    forge,
    make_region,
)
from forensix.data.io import as_image_array, as_mask_array, read_image, read_mask, write_image, write_mask
from forensix.data.sources import FolderPhotos, PhotoPool, bundled_names, bundled_photo, split_photo_names, texture

__all__ = [
    "DETECTION_QUESTION", "analysis_question", "detection_answer", "stage1_messages", "stage2_messages",
    "stage3_messages", "FolderDataset", "ManifestDataset", "SyntheticForgeryDataset", "SyntheticImageDataset",
    "collate_samples", "load_dataset", "to_tensor_image", "to_tensor_mask", "CLUES", "GRID_CELLS", "caption",
    "clue_vector", "clues_for", "describe", "explanation", "localized_description", "location_phrase",
    "mask_cells", "parse_location", "parse_verdict", "shape_phrase", "size_phrase", "verdict", "ALL_OPS",
    "ALL_SHAPES", "ForgeryGenerator", "ForgeryRecord", "Sample", "apply_postprocess", "forge", "make_region",
    "as_image_array", "as_mask_array", "read_image", "read_mask", "write_image", "write_mask", "FolderPhotos",
    "PhotoPool", "bundled_names", "bundled_photo", "split_photo_names", "texture",
]
