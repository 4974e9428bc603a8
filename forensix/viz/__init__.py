"""Figures (static and interactive), Jupyter widgets (:mod:`~forensix.viz.widgets`) and HTML reports
(:mod:`~forensix.viz.report`); builders return objects, never display them.

Example:
    >>> from forensix.viz import roc_curves
    >>> roc_curves([0.2, 0.8], [0, 1]).layout.xaxis.title.text
    'false positive rate'
"""

from forensix.viz.export import export_notebook
from forensix.viz.figure_pane import FigurePane
from forensix.viz.figures import (
    attention_grid,
    forgery_gallery,
    heatmap_overlay,
    history_frame,
    mask_overlay,
    metric_table,
    op_samples,
    pr_curves,
    roc_curves,
    to_png,
    token_attribution_text,
    token_patch_matrix,
    training_curves,
)

__all__ = [
    "FigurePane", "attention_grid", "export_notebook", "forgery_gallery", "heatmap_overlay", "history_frame", "mask_overlay", "metric_table",
    "op_samples", "pr_curves", "roc_curves", "to_png", "token_attribution_text", "token_patch_matrix",
    "training_curves",
]
