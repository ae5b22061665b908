"""Exceptions that carry a message a user can act on (the CLI prints them as one line)."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type's name when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class RnnlabError(Exception):
    """Base class of rnnlab's own errors."""


class DataError(RnnlabError, ValueError):
    """A data file or data option is unusable (missing column, empty file, not UTF-8, ...)."""


class CheckpointError(RnnlabError, ValueError):
    """A checkpoint or run directory is missing, corrupted, or not one of rnnlab's."""


class TrainingDiverged(RnnlabError):
    """Training kept producing NaN/Inf after the allowed number of rollbacks."""


class InputError(RnnlabError, ValueError, RuntimeError):
    """A forward argument of a layer or cell of the wrong type, shape, dtype or device.

    A ValueError, as rnnlab's checks have always raised, and a RuntimeError, as torch.nn raises
    for most of these, so that ``except RuntimeError`` written for torch.nn keeps working.
    """
