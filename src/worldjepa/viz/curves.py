"""Training curves: loss, schedules and collapse monitors from a run's metrics.csv, in one PNG."""

from __future__ import annotations

import csv
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# (column, panel title, log-scale y); columns absent from the CSV are skipped
PANELS = (
    ("loss", "loss", True),
    ("lr", "learning rate", False),
    ("wd", "weight decay", False),
    ("grad_norm", "gradient norm (before clipping)", True),
    ("rankme", "RankMe effective rank", False),
    ("emb_std", "mean per-dim std of embeddings", False),
)
COLUMNS = 3


def read_log(csv_path: str | Path) -> dict[str, list[float]]:
    """Columns of a metrics.csv as float lists (empty cells become NaN)."""
    with Path(csv_path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    keys = rows[0].keys() if rows else []
    return {k: [float(r[k]) if r[k] not in ("", None) else float("nan") for r in rows] for k in keys}


def plot_curves(csv_path: str | Path, out_path: str | Path) -> Path:
    """Plot every column of `PANELS` present in the log against the step; save a PNG at `out_path`."""
    log = read_log(csv_path)
    panels = [p for p in PANELS if p[0] in log]
    rows = max(1, -(-len(panels) // COLUMNS))
    fig = Figure(figsize=(4.5 * COLUMNS, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (column, title, logy) in enumerate(panels):
        ax = fig.add_subplot(rows, COLUMNS, i + 1)
        ax.plot(log["step"], log[column])
        if logy and all(v > 0 for v in log[column]):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    return out_path
