"""Owning a run directory: rnnlab writes only where it may, one writer at a time.

- **Ownership.** ``rnnlab train`` writes into a directory that does not exist, is empty, or is an
  rnnlab run of the same task (its marker file ``.rnnlab-run`` says so) that holds no finished or
  resumable checkpoint. Anything else is refused with one line naming the file it would have
  touched; ``force`` overrides that, and even then nothing rnnlab did not write is deleted (rnnlab
  only ever replaces its own file names).
- **One writer.** Training and resuming hold an exclusive advisory lock (``fcntl.flock`` on
  ``.rnnlab-lock``) for as long as they write. The kernel releases it when the process ends in
  any way, so a crashed run never leaves a stale lock; the file keeps the holder's process id for
  the error message of a second writer.
- **Leftovers.** Temporary files of an interrupted atomic write (``.<name>.*.tmp``) are removed by
  the next writer, once it holds the lock.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

MARKER = ".rnnlab-run"
LOCK = ".rnnlab-lock"
RUN_FILES = ("config.yaml", "metrics.jsonl", "results.json", "checkpoints")


class RunDirectoryError(RnnlabError, ValueError):
    """The run directory may not be written: someone else's files, or another writer."""


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The marker of an rnnlab run directory, or None when there is none (or it is unreadable)."""
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def check_ownership(directory: Path, task: str, *, resume: bool, force: bool) -> None:
    """Raise RunDirectoryError (one line) unless rnnlab may write a ``task`` run into
    ``directory`` (see the module docstring)."""
    if directory.exists() and not directory.is_dir():
        raise RunDirectoryError(f"{directory} exists and is not a directory")
    if resume or force or not directory.exists():
        return
    entries = sorted(path.name for path in directory.iterdir())
    if not entries:
        return
    marker = read_marker(directory)
    hint = "choose another --out, or pass --force to write into it anyway"
    if (directory / "checkpoints" / "last.pt").exists():
        raise RunDirectoryError(f"{directory} already holds a run; continue it with --resume "
                                f"{directory} or {hint}")
    if marker is None:
        touched = [name for name in RUN_FILES if name in entries]
        what = (f"would overwrite {directory / touched[0]}" if touched
                else f"holds other files ({entries[0]}, ...)")
        raise RunDirectoryError(f"{directory} is not an rnnlab run directory and {what}; {hint}")
    if marker.get("kind", "train") != "train":
        raise RunDirectoryError(f"{directory} holds an rnnlab {marker.get('kind')} output, not a "
                                f"run; {hint}")
    if marker.get("task") != task:
        raise RunDirectoryError(f"{directory} is a run of task {marker.get('task')!r}, not "
                                f"{task!r}; {hint}")


def write_marker(directory: Path, task: str | None, kind: str = "train") -> None:
    """Mark ``directory`` as rnnlab's: a run of ``task`` (kind "train"), or the output of
    another command (``kind`` "lecture", "diagnose"); kept when it already says so."""
    marker = read_marker(directory)
    if marker is not None and marker.get("kind", "train") == kind and marker.get("task") == task:
        return
    record = {"kind": kind, "task": task, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (directory / MARKER).write_text(json.dumps(record) + "\n", encoding="utf-8")


def claim_output_directory(directory: Path, kind: str, *,
                           earlier_output: Callable[[Path], bool], force: bool) -> RunLock:
    """Create or check, mark and lock the output directory of ``rnnlab lecture`` or
    ``rnnlab diagnose --out`` (``kind``); returns the held lock.

    The directory may be new, empty, marked as this kind's output, or what
    ``earlier_output(directory)`` recognises as the command's output from before markers
    existed; anything else is refused in one line naming a file, unless ``force``. Only the
    command's own file names are ever written.
    """
    if directory.exists() and not directory.is_dir():
        raise RunDirectoryError(f"{directory} exists and is not a directory")
    if directory.exists() and not force:
        marker = read_marker(directory)
        hint = "choose another --out, or pass --force to write into it anyway"
        if marker is not None and marker.get("kind", "train") != kind:
            raise RunDirectoryError(f"{directory} holds an rnnlab {marker.get('kind', 'train')} "
                                    f"output, not a {kind} one; {hint}")
        foreign = sorted(path.name for path in directory.iterdir()
                         if path.name not in (MARKER, LOCK))
        if marker is None and foreign and not earlier_output(directory):
            raise RunDirectoryError(f"{directory} holds files rnnlab did not write "
                                    f"({foreign[0]}{', ...' if len(foreign) > 1 else ''}); "
                                    f"{hint}")
    directory.mkdir(parents=True, exist_ok=True)
    lock = RunLock(directory).acquire()
    write_marker(directory, None, kind)
    return lock


def holds_only(directory: Path, names: tuple[str, ...], record: str, keys: tuple[str, ...]
               ) -> bool:
    """Whether ``directory`` holds only files named ``names`` or ``*.png``, among them the JSON
    object ``record`` with all of ``keys`` (how an rnnlab report looks)."""
    if any(path.name not in names and not path.name.endswith(".png")
           for path in directory.iterdir()):
        return False
    try:
        content = json.loads((directory / record).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and all(key in content for key in keys)


class RunLock:
    """The exclusive lock of a run directory; :meth:`release` (or process exit) frees it."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK
        self.handle: Any = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunDirectoryError naming the process that holds it."""
        if fcntl is None:  # pragma: no cover
            return self
        handle = open(self.path, "a+", encoding="utf-8")  # held until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunDirectoryError(
                f"{self.path.parent} is being written by {holder}; wait for it to finish or "
                "stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self.handle = handle
        return self

    def release(self) -> None:
        """Free the lock (safe to call twice)."""
        if self.handle is not None:
            self.handle.close()  # closing the descriptor releases the flock
            self.handle = None


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete leftovers of interrupted atomic writes (``.<name>.*.tmp`` in ``directory`` and
    ``directory/checkpoints``); call only while holding the lock. Returns what was removed."""
    removed = []
    for folder in (directory, directory / "checkpoints"):
        if not folder.is_dir():
            continue
        for path in folder.glob(".*.tmp"):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
