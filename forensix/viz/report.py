"""Self-contained HTML reports of analyses: image, masks, text, p_fake, clues, grounding, curves.

Every image is an inline PNG (no CDN, no JavaScript), so a report opens offline in any browser.

Example:
    >>> import numpy as np, tempfile
    >>> from forensix.models.analysis import Analysis
    >>> a = Analysis(image=np.zeros((8, 8, 3), np.uint8), question="q", text="real.",
    ...              mask_probs=np.zeros((8, 8), np.float32), p_fake=0.1)
    >>> path = write_report([ReportItem(a)], tempfile.mkdtemp() + "/report.html", title="demo")
    >>> path.read_text().count("<img") >= 2
    True
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from forensix.inline import heat_rgb, overlay_mask, png_data_uri
from forensix.models.analysis import Analysis


@dataclass
class ReportItem:
    """One analysed image, with its ground truth when known and optional grounding maps."""

    analysis: Analysis
    gt_mask: np.ndarray | None = None
    reference: str | None = None
    grounding: object | None = None  # anything with .maps [n, H, W] and .tokens
    alongside: Sequence[tuple[str, Analysis]] = ()  # other models' analyses of the same image, (label, analysis)


def figure_data_uri(fig: Figure, dpi: int = 110) -> str:
    """A matplotlib figure as an inline PNG URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _grounding_strip(item: ReportItem, max_tokens: int = 6) -> str:
    grounding = item.grounding
    if grounding is None or not len(getattr(grounding, "tokens", [])):
        return ""
    from forensix.explain.grounding import location_token_indices

    chosen = location_token_indices(grounding.tokens)[:max_tokens] or list(range(min(max_tokens, len(grounding.tokens))))
    cells = []
    for index in chosen:
        heat = np.asarray(grounding.maps[index])
        blend = (0.5 * item.analysis.image + 0.5 * heat_rgb(heat)).astype(np.uint8)
        if item.gt_mask is not None:
            blend = overlay_mask(blend, item.gt_mask, color=(60, 220, 60), alpha=0.0)
        cells.append(f'<figure style="margin:2px"><img src="{png_data_uri(blend)}" width="112">'
                     f"<figcaption>{html.escape(repr(grounding.tokens[index]))}</figcaption></figure>")
    return ('<div><b>grounding</b> (where each explanation token looked; green = true mask)'
            f'<div style="display:flex;flex-wrap:wrap">{"".join(cells)}</div></div>')


def _alongside_html(label: str, a: Analysis) -> str:
    """Another model's analysis of the same image, in one row: its prediction, verdict, p_fake and answer."""
    colour = "#c0392b" if a.verdict == "fake" else "#1e8449"
    return (f'<div style="display:flex;align-items:center;background:#f6f6f6;margin-top:4px">'
            f'<img src="{png_data_uri(overlay_mask(a.image, a.mask))}" width="112" style="margin:2px">'
            f'<div style="padding:0 8px"><b>{html.escape(label)}:</b> <b style="color:{colour}">{a.verdict.upper()}</b> '
            f"p_fake = {a.p_fake:.3f}<br>{html.escape(a.text)}</div></div>")


def item_html(item: ReportItem) -> str:
    """One analysis as an HTML block: GT overlay, prediction, heatmap, answer and grounding."""
    a = item.analysis
    panels = []
    if item.gt_mask is not None:
        panels.append(("ground truth", overlay_mask(a.image, item.gt_mask, color=(60, 220, 60))))
    panels.append((f"prediction (probability ≥ {a.threshold:.2f})", overlay_mask(a.image, a.mask)))
    panels.append(("mask probability", heat_rgb(a.mask_probs)))
    figures = "".join(
        f'<figure style="margin:2px"><img src="{png_data_uri(img)}" width="180"><figcaption>{t}</figcaption></figure>'
        for t, img in panels
    )
    colour = "#c0392b" if a.verdict == "fake" else "#1e8449"
    truth = "" if item.gt_mask is None else f" · truth: <b>{'fake' if item.gt_mask.any() else 'real'}</b>"
    reference = "" if not item.reference else f"<p style='color:#666'><b>reference:</b> {html.escape(item.reference)}</p>"
    return (
        '<div style="border-top:1px solid #ddd;padding:8px 0">'
        f'<div style="display:flex">{figures}</div>'
        f'<div><b style="color:{colour}">{a.verdict.upper()}</b> p_fake = {a.p_fake:.3f}{truth} · '
        f'clues: {html.escape(", ".join(a.clues) or "none")}</div>'
        f"<p><b>answer:</b> {html.escape(a.text)}</p>{reference}{_grounding_strip(item)}"
        f"{''.join(_alongside_html(label, other) for label, other in item.alongside)}</div>"
    )


def write_report(items: Sequence[ReportItem], path: str | Path, *, title: str = "forensix report",
                 intro: str = "", figures: Sequence[tuple[str, Figure]] = (), tables: Sequence[tuple[str, str]] = ()) -> Path:
    """Write a self-contained HTML report; ``tables`` are (title, HTML table) pairs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{intro}</p>" if intro else ""]
    for name, table in tables:
        parts.append(f"<h2>{html.escape(name)}</h2>{table}")
    for name, fig in figures:
        parts.append(f'<h2>{html.escape(name)}</h2><img src="{figure_data_uri(fig)}" style="max-width:900px">')
    if items:
        parts.append("<h2>Analyses of held-out images</h2>")
        parts.extend(item_html(item) for item in items)
    style = "body{font-family:sans-serif;max-width:1000px;margin:auto} table{border-collapse:collapse} td,th{padding:2px 8px;border:1px solid #ccc}"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    return path


__all__ = ["ReportItem", "figure_data_uri", "item_html", "write_report"]
