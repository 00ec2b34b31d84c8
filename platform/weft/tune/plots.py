"""The sweep's plots: the metric against each swept value, one point per trial."""

from __future__ import annotations

import re

import pandas as pd
from matplotlib.figure import Figure  # not pyplot: no display, no global state

from weft.tune.spec import AnySweep

STYLES = {
    "completed": ("o", "tab:blue"),
    "stopped early": ("x", "tab:orange"),
    "failed": ("s", "tab:red"),
}


def metric_plots(frame: pd.DataFrame, spec: AnySweep) -> dict[str, Figure]:
    """`<metric>_vs_<path>.png` → a scatter of the trials' last reported metric against the
    value at `path`, by status; a log axis for `log_uniform` values."""
    figures = {}
    for path, dimension in spec.space.items():
        figure = Figure(figsize=(5, 3.5), layout="constrained")
        axes = figure.subplots()
        for status, (marker, colour) in STYLES.items():
            rows = frame[frame["status"] == status]
            if len(rows):
                axes.scatter(
                    rows[path].astype(str) if _categorical(rows[path]) else rows[path],
                    rows[spec.metric],
                    marker=marker,
                    color=colour,
                    label=status,
                )
        if dimension.log_uniform is not None:
            axes.set_xscale("log")
        axes.set_xlabel(path)
        axes.set_ylabel(f"{spec.metric} (last report)")
        axes.set_title(f"{spec.name}: {spec.metric} ({spec.mode}) by {path}")
        axes.legend()
        figures[f"{_slug(spec.metric)}_vs_{_slug(path)}.png"] = figure
    return figures


def _categorical(values: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
