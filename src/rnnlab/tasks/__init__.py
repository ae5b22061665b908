"""Training tasks: each is data (generated or read from files) + a model head + a metric.

``TASKS`` maps a task name to its class; :func:`get_task` looks one up with a clear error.
"""

from __future__ import annotations

from rnnlab.tasks.adding import AddingTask
from rnnlab.tasks.agreement import AgreementTask
from rnnlab.tasks.anbn import AnbnTask
from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, Task, detach_carry
from rnnlab.tasks.classify import ClassifyTask
from rnnlab.tasks.copy import CopyTask
from rnnlab.tasks.lm import LanguageModelTask
from rnnlab.tasks.recall import RecallTask
from rnnlab.tasks.sentiment import PolarityTagsTask, SentimentToyTask
from rnnlab.tasks.translate import TranslateTask

TASKS: dict[str, type[Task]] = {
    task.name: task
    for task in (
        AddingTask,
        CopyTask,
        AnbnTask,
        AgreementTask,
        RecallTask,
        SentimentToyTask,
        PolarityTagsTask,
        LanguageModelTask,
        ClassifyTask,
        TranslateTask,
    )
}


def get_task(name: str) -> type[Task]:
    """The task class called ``name``; ValueError listing the known names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None


__all__ = ["TASKS", "Batch", "ModelConfig", "StepOutput", "Task", "detach_carry", "get_task"]
