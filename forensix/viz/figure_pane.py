"""A plotly figure in an ipywidgets ``Output``: the explorers' plots.

Why not plotly's ``FigureWidget``: since plotly 6 it is an anywidget whose synced state carries
plotly.js itself (a 5 MB ES module) and which imports that module once per figure. Five explorers
(seven figures) made 36 MB of widget state; a reloaded page asks the kernel for all of it, and on a
busy machine the request outlives the widget manager's 4 s limit and anywidget's 2 s import limit,
so the page showed "model not found" where the plots were. A :class:`FigurePane` syncs only the
figure's JSON (numbers as base64 typed arrays: kilobytes for an explorer's 64-192 px images) as one
``display_data`` output, drawn by JupyterLab's plotly renderer (loaded once per page). After a
reload, in a second view and in saved widget state, the browser draws the figure as it is now.

Example:
    >>> import plotly.graph_objects as go
    >>> pane = FigurePane(go.Figure(go.Bar(y=[1, 2])))
    >>> with pane.batch_update():
    ...     pane.data[0].y = [3, 4]
    ...     pane.layout.title.text = "updated"
    >>> pane.synced_figure()["layout"]["title"]["text"], pane.synced_figure()["data"][0]["y"]
    ('updated', [3, 4])
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import ipywidgets as W

__all__ = ["FigurePane", "PLOTLY_MIME"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"


class FigurePane:
    """``.figure`` (a ``go.Figure``) shown in ``.widget`` (an ``ipywidgets.Output``).

    Change the figure through ``.data`` / ``.layout`` / :meth:`add_trace` inside
    :meth:`batch_update` (redrawn once at the end), or call :meth:`draw` after changing it directly.
    Safe to update from a background thread (the stage walkthrough trains in one).
    """

    def __init__(self, figure: Any, **output_layout: Any) -> None:
        self.figure = figure
        self.widget = W.Output(layout=W.Layout(**output_layout))
        self._depth = 0
        self._lock = threading.RLock()
        self.draw()

    @property
    def data(self) -> Any:
        return self.figure.data

    @property
    def layout(self) -> Any:
        return self.figure.layout

    def add_trace(self, trace: Any, **kwargs: Any) -> None:
        """Add a trace (as ``go.Figure.add_trace``); drawn at the end of the batch, or now outside one."""
        with self.batch_update():
            self.figure.add_trace(trace, **kwargs)

    @contextlib.contextmanager
    def batch_update(self) -> Iterator[Any]:
        """Group changes: the figure is drawn once when the outermost batch ends."""
        with self._lock:
            self._depth += 1
            try:
                yield self.figure
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.draw()

    def draw(self) -> None:
        """Send the figure as it is now to the browser (the ``Output`` widget's one synced output)."""
        spec = json.loads(self.figure.to_json())
        output = {"output_type": "display_data", "metadata": {},
                  "data": {PLOTLY_MIME: spec, "text/plain": f"<plotly figure: {len(spec['data'])} traces>"}}
        with self._lock:
            self.widget.outputs = (output,)

    def synced_figure(self) -> dict:
        """The figure JSON the browser holds (what a reloaded page or saved widget state draws)."""
        return self.widget.outputs[0]["data"][PLOTLY_MIME]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
