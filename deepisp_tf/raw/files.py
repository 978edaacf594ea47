"""Which files of a folder are RAW candidates (no decoding): shared by the runtime and data."""

from __future__ import annotations

import os

SIDECAR_EXTENSIONS = {".md", ".tsv", ".txt", ".json", ".csv", ".xmp", ".tmp"}


class RawFolderError(ValueError):
    """A folder of RAW files cannot be listed (e.g. it does not exist); the message names it."""


def list_raw_files(folder: str) -> list[str]:
    """Return the candidate RAW files in `folder` (sorted; hidden files and sidecars skipped).

    Raises:
      RawFolderError: `folder` is not a folder.
    """
    if not os.path.isdir(folder):
        raise RawFolderError(f"{folder}: input folder does not exist")
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    return [os.path.join(folder, n) for n in names
            if os.path.isfile(os.path.join(folder, n))
            and os.path.splitext(n)[1].lower() not in SIDECAR_EXTENSIONS]
