"""The run log: one CSV row per logging step (the source of `curves.png`), mirrored to TensorBoard.

TensorBoard is optional: if `torch.utils.tensorboard` cannot be imported the CSV is the only log.
"""

from __future__ import annotations

import csv
from pathlib import Path

METRICS_CSV = "metrics.csv"


class RunLogger:
    """Appends rows to `run_dir/metrics.csv`, and scalars to `run_dir/tb/` if asked and TensorBoard exists.

    On resume from step k, rows logged after k by the interrupted run are dropped so that the CSV
    reads as one uninterrupted run.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_CSV
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fields: list[str] | None = None
        if resume_step is not None and self.path.is_file():
            self._truncate_after(resume_step)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass
            else:
                self.tb = SummaryWriter(str(self.path.parent / "tb"), purge_step=resume_step)

    def _truncate_after(self, step: int) -> None:
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            self.fields = list(reader.fieldnames or [])
            rows = [r for r in reader if int(r["step"]) <= step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(rows)

    def log(self, row: dict[str, float]) -> None:
        """Append one row; the first row fixes the CSV columns (later unknown keys go to TensorBoard only)."""
        new_file = self.fields is None
        if new_file:
            self.fields = list(row)
        with self.path.open("w" if new_file else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        if self.tb is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step":
                    self.tb.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
