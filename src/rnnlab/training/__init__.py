"""Training: configuration, the training loop, checkpoints, data-parallel helpers, run directories.

    from rnnlab.training import TrainConfig, train
    result = train(TrainConfig(task="adding", steps=200), out_dir=None)
    result.metrics["test_mse"]

:func:`train` is what ``rnnlab train`` calls; :func:`load_run` reads a run directory back for
``rnnlab evaluate``, ``rnnlab generate`` and ``rnnlab diagnose``.
"""

from rnnlab.training.callbacks import Callback, LogLines, ProgressBar
from rnnlab.training.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.training.config import TrainConfig, load_config, save_config
from rnnlab.training.distributed import DistributedContext
from rnnlab.training.run import Run, build_task, load_run, train
from rnnlab.training.trainer import Trainer, TrainResult

__all__ = [
    "Callback",
    "DistributedContext",
    "LogLines",
    "ProgressBar",
    "Run",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_task",
    "load_checkpoint",
    "load_config",
    "load_run",
    "save_checkpoint",
    "save_config",
    "train",
]
