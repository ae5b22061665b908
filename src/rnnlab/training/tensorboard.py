"""TensorBoard event files of a run, written beside its metrics log (optional extra).

:class:`TensorBoardWriter` turns every row of ``metrics.jsonl`` into scalars in
``RUN_DIR/tensorboard/``, at the row's step and tagged ``<split>/<key>`` (``train/loss``,
``train/grad_norm``, ``valid/valid_accuracy``, ``test/test_accuracy``; rollbacks as
``rollback/lr`` and ``rollback/count``), so that ``tensorboard --logdir RUN_DIR`` shows the curves
of ``metrics.jsonl``. It needs the ``tensorboard`` package (``pip install 'rnnlab[tensorboard]'``);
:func:`check_tensorboard_available` says so in one line before training starts.

A resumed run shows exactly the rows of ``metrics.jsonl``: the new event file starts with
TensorBoard's purge marker at the checkpoint's step (``SummaryWriter(purge_step=...)``), which hides
every earlier event at or after that step, including those the interrupted attempt logged after
its checkpoint, and the rows the checkpoint had already seen at that step are written again.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnlab.training.callbacks import Callback

if TYPE_CHECKING:
    from rnnlab.training.trainer import Trainer, TrainResult

DIRECTORY_NAME = "tensorboard"
SKIPPED_KEYS = frozenset({"step", "split", "epoch", "event"})
MISSING_PACKAGE = ("--tensorboard needs the tensorboard package: pip install 'rnnlab[tensorboard]' "
                   "(or pip install tensorboard)")


def _summary_writer_class() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or ValueError (one line) when it cannot be
    imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        missing = getattr(error, "name", None) or ""
        if isinstance(error, ModuleNotFoundError) and (
                missing in ("tensorboard", "torch.utils.tensorboard")
                or missing.startswith("tensorboard.")):
            raise ValueError(MISSING_PACKAGE) from None
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(f"--tensorboard: the tensorboard package is installed but does not "
                         f"import ({reason[:160]}); reinstall it: pip install "
                         "'rnnlab[tensorboard]'") from None
    return SummaryWriter


def check_tensorboard_available() -> None:
    """Raise ValueError (one line, with the command that installs it) when TensorBoard event
    files cannot be written: the ``tensorboard`` package is missing or does not import."""
    _summary_writer_class()


def row_scalars(row: dict[str, Any]) -> dict[str, float]:
    """``{tag: value}`` of one metrics row: every finite int or float (not bool) under
    ``<split>/<key>`` (keys kept as they are, slashes included), except ``step``, ``split``,
    ``epoch`` and ``event``; a rollback row gives ``rollback/lr`` and ``rollback/count``."""
    if row.get("event") == "rollback":
        values = {"rollback/lr": row.get("lr"), "rollback/count": row.get("rollbacks")}
    elif isinstance(row.get("split"), str):
        values = {f"{row['split']}/{key}": value for key, value in row.items()
                  if key not in SKIPPED_KEYS}
    else:
        return {}
    return {tag: float(value) for tag, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


class TensorBoardWriter(Callback):
    """Writes every metrics row of a run as TensorBoard scalars into ``RUN_DIR/tensorboard/``.

    Events are flushed at every validation row and the file is closed at the end of training
    (:meth:`close` may be called again, and by whoever stops a run early).

    Args:
        run_dir: the run directory; the event files go to its ``tensorboard/`` folder.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / DIRECTORY_NAME
        self.writer: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        summary_writer = _summary_writer_class()
        earlier = self.log_dir.is_dir() and any(self.log_dir.glob("events.out.tfevents.*"))
        # purge_step: TensorBoard hides the earlier files' events at or after this step (logged
        # by an interrupted attempt after its checkpoint, or by a run this one replaces)
        self.writer = summary_writer(log_dir=str(self.log_dir), purge_step=trainer.step)
        # the rows the checkpoint had seen at its own step were purged with the rest: write
        # them again (all rows when the run had no event files yet, e.g. --tensorboard added
        # at --resume)
        first = trainer.step if earlier else 0
        for row in trainer.log.rows:
            if int(row.get("step", 0)) >= first:
                self._add(row)
        self.writer.flush()

    def _add(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for tag, value in row_scalars(row).items():
            self.writer.add_scalar(tag, value, global_step=step)

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        self._add(row)
        if row.get("split") == "valid":
            self.writer.flush()

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (also safe when it was never opened or is closed)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
