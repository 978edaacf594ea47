"""Atomic file writes: a temporary file in the same folder, flushed, then renamed over the target.

A reader (or a run interrupted at any moment) sees either the old file or the new one, never a
partial one. TF-free, so the runtime and tools can use it.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Write `data` to `path` atomically and return the path."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Not mkstemp: its files are mode 0600; this one gets the usual umask-derived mode.
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> str:
    """Write UTF-8 `text` to `path` atomically and return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, value: Any) -> str:
    """Write `value` as indented, key-sorted JSON to `path` atomically and return the path."""
    return write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
