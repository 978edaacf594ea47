"""Atomic file writes: a temporary file in the same folder, flushed, then renamed over the target.

A reader (or a run interrupted at any moment) sees either the old file or the new one, never a
partial one. TF-free, so the runtime and tools can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Any, Iterator


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it goes.

    For writers that need a file name (TFRecord, tifffile, Keras, Matplotlib). `suffix` ends
    the temporary name, for writers that choose the format by extension (e.g. ".keras").
    The file gets the usual umask-derived mode (unlike mkstemp's 0600).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Write `data` to `path` atomically and return the path."""
    with replacing(path) as temporary, open(temporary, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return os.fspath(path)


def write_text(path: str | os.PathLike, text: str) -> str:
    """Write UTF-8 `text` to `path` atomically and return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, value: Any) -> str:
    """Write `value` as indented, key-sorted JSON to `path` atomically and return the path."""
    return write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
