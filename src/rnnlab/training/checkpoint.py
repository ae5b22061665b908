"""Checkpoints: written atomically (temporary file + rename), loaded without running any code.

A checkpoint is a dict of tensors and plain data saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which refuses pickled objects other than tensors and builtin
containers. A format marker tells rnnlab's checkpoints apart from any other file, and a checksum
of the content (every tensor's bytes, dtype and shape, and every plain value), written with it and
verified on every load, tells a file changed after it was written (a flipped bit in a weight loads
without complaint from ``torch.load``) from a good one. Checkpoints of version 1 have none.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from rnnlab.errors import CheckpointError, first_line

FORMAT = "rnnlab-checkpoint"
VERSION = 2  # 2: with "checksum"


def content_digest(value: Any) -> str:
    """A BLAKE2b digest (hex) of nested dicts/lists/tuples of tensors and plain values: tensors
    by dtype, shape and bytes, plain values by ``repr``, dict items in the order of their keys'
    ``repr``."""
    digest = hashlib.blake2b(digest_size=32)
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__[0]}{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"P{value!r};".encode())


def current_umask() -> int:
    """The process's file-mode creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The bytes go to a temporary file in the same directory, which is flushed to disk and then
    renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows). The file gets the mode
    an ordinary ``open`` would give it (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; a run's files follow the umask instead
            os.fchmod(descriptor, 0o666 & ~current_umask())
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
    content = {"format": FORMAT, "version": VERSION, **payload}
    content["checksum"] = content_digest(content)
    buffer = io.BytesIO()
    torch.save(content, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, tensors on the CPU.

    Raises:
        CheckpointError: one line, when the file is missing, truncated or corrupted (its checksum
            does not match), holds anything but tensors and plain data, or is not an rnnlab
            checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 5": the error says it
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file (pickle, zip, runtime)
        reason = first_line(error)
        if reason.startswith("Weights only load failed"):  # torch's paragraph: keep its cause
            cause = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(error))
            reason = "not a file of tensors and plain data" + (
                f": {cause.group(1).strip()}" if cause else "")
            if cause and "global" in cause.group(1).lower():
                raise CheckpointError(
                    f"{path}: refused: the file holds objects other than tensors and plain data, "
                    "and loading them could run code (not an rnnlab checkpoint, or tampered with)"
                ) from None
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
    if version >= 2:
        checksum = payload.pop("checksum", None)
        if checksum != content_digest(payload):
            raise CheckpointError(
                f"{path}: checksum mismatch: the checkpoint was changed or corrupted after it was "
                "written (restore it from a copy, or retrain)"
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
