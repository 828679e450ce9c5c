"""Metrics logging: metrics.csv (always), TensorBoard events (when installed), progress bars."""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path
from typing import Any

from genlab.fileio import atomic_write_text


class MetricsLog:
    """One CSV row per logged step; columns grow as new metrics appear (the file is rewritten).

    On resume, rows after the resumed step are dropped so the log matches the weights.
    """

    def __init__(self, path: Path, *, resume_step: int | None = None, tensorboard: bool = True):
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = ["step"]
        if resume_step is not None and path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or ["step"])
                self.rows = [r for r in reader if int(float(r["step"])) <= resume_step]
            self._rewrite()
        self.writer = _tensorboard_writer(path.parent, resume_step) if tensorboard else None

    def log(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **{k: _fmt(v) for k, v in values.items()}}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new or not self.path.exists():
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, self.columns).writerow(row)
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buffer.getvalue())

    def latest(self) -> dict[str, float]:
        """The last logged value of every column (the rows kept match the weights on resume):
        what a resumed run that has nothing left to train reports."""
        values: dict[str, float] = {}
        for row in self.rows:
            for key, value in row.items():
                if key != "step" and value not in ("", None):
                    values[key] = float(value)
        return values

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def clear_logs(folder: Path) -> None:
    """Remove metrics.csv and the TensorBoard event files of a run that starts again from
    step 0 (they describe steps whose weights were never saved)."""
    (folder / "metrics.csv").unlink(missing_ok=True)
    for events in folder.glob("events.out.tfevents.*"):
        events.unlink(missing_ok=True)


def _fmt(value: float) -> float | str:
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _tensorboard_writer(folder: Path, resume_step: int | None):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    # purge_step drops events after the resumed step, as for metrics.csv.
    return SummaryWriter(str(folder), purge_step=None if resume_step is None else resume_step + 1)


class Progress:
    """A rich progress bar with loss, it/s and ETA; silent when disabled."""

    def __init__(self, total: int, start: int, *, enabled: bool, description: str = "train"):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TextColumn("{task.fields[speed]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.bar.add_task(description, total=total, completed=start, info="", speed="")
        self.bar.start()

    def update(self, step: int, info: str | None = None, speed: float | None = None) -> None:
        """Move the bar to `step`; the loops call it every step (cheap: rich redraws on its
        own clock), with the loss text and speed at log steps (kept until the next one)."""
        if not self.enabled:
            return
        fields = {} if info is None else {"info": info}
        if speed is not None:
            fields["speed"] = f"{speed:.1f} it/s"
        self.bar.update(self.task, completed=step, **fields)

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()
