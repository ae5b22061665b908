"""Checkpoints: written atomically (temporary file + rename), loaded without running any code.

A checkpoint is a dict of tensors and plain data saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which refuses pickled objects other than tensors and builtin
containers. A format marker tells rnnlab's checkpoints apart from any other file.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from rnnlab.errors import CheckpointError

FORMAT = "rnnlab-checkpoint"
VERSION = 1


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The bytes go to a temporary file in the same directory, which is flushed to disk and then
    renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(text.encode("utf-8"), path)


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Save ``payload`` (tensors and plain data only) atomically, with the format marker added."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, tensors on the CPU.

    Raises:
        CheckpointError: one line, when the file is missing, truncated or corrupted, holds
            anything but tensors and plain data, or is not an rnnlab checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file (pickle, zip, runtime)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if len(reason) > 120:
            reason = reason[:117] + "..."
        raise CheckpointError(f"{path}: corrupted or unreadable checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnlab checkpoint")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this rnnlab reads "
            f"({VERSION})"
        )
    return payload


def to_device(value: Any, device: torch.device | str) -> Any:
    """Move every tensor inside nested tuples/lists/dicts to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(to_device(item, device) for item in value)
    if isinstance(value, list):
        return [to_device(item, device) for item in value]
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    return value
