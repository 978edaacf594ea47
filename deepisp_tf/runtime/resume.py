"""Resumable batches: remember which outputs were made by which model and settings.

`tools.infer` keeps DIR/.deepisp_outputs.json beside its outputs, rewritten atomically after
every image written:

    {"format_version": 1,
     "outputs": {"IMG_1.png": {"input": "/abs/IMG_1.CR2", "input_size": 25165824,
                               "input_mtime_ns": 1700000000000000000, "bytes": 31457280,
                               "settings": {"model_sha256": "...", "tile": 256, ...}}}}

Running the same command again skips every output whose entry matches: same input (path, size,
mtime), same settings (the model file's SHA-256 and everything else that changes the pixels or
the file format: tile, overlap, delegate, format, PNG mode, package version) and the output still
there with the recorded size. Anything else is rendered again; `overwrite` renders everything.
Outputs are written to a temporary file and renamed (`atomic`), so a killed batch leaves no
partial output, only temporaries, which the next run removes (`remove_stale_temporaries`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Iterable, Mapping

from deepisp_tf import __version__, atomic
from deepisp_tf.raw.io import sha256_of

log = logging.getLogger(__name__)

MANIFEST_NAME = ".deepisp_outputs.json"
FORMAT_VERSION = 1
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")  # atomic.replacing's names


def render_settings(runner: Any, overlap: int, fmt: str, png_mode: str) -> dict[str, Any]:
    """Return what decides an output's bytes: model hash, tiling, delegate, format, version.

    Args:
      runner: the opened model (`interpreter.Runner`: model_path, tile_shape, delegate).
      overlap: the engine's tile overlap.
      fmt: output format; png_mode: the PNG setting (recorded for PNG only).
    """
    model_path = getattr(runner, "model_path", None)
    return {
        "model_sha256": sha256_of(model_path) if model_path else type(runner).__name__,
        "tile": list(runner.tile_shape), "overlap": int(overlap),
        "delegate": getattr(runner, "delegate", None), "format": fmt,
        "png_mode": png_mode if fmt == "png" else None, "version": __version__}


def input_key(path: str) -> dict[str, Any]:
    """Return how an input is recognized: absolute path, size and modification time."""
    stat = os.stat(path)
    return {"input": os.path.abspath(path), "input_size": stat.st_size,
            "input_mtime_ns": stat.st_mtime_ns}


class Manifest:
    """The outputs of one folder and what made them (see the module docstring).

    Attributes:
      path: DIR/.deepisp_outputs.json.
      settings: the settings of this run.
      outputs: output file name -> entry.
    """

    def __init__(self, output_dir: str, settings: Mapping[str, Any]):
        self.path = os.path.join(output_dir, MANIFEST_NAME)
        self.settings = dict(settings)
        self.outputs: dict[str, dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as handle:
                stored = json.load(handle)
            if stored.get("format_version") == FORMAT_VERSION:
                self.outputs = dict(stored.get("outputs", {}))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as error:
            log.warning("%s is unreadable (%s): every output will be rendered again",
                        self.path, error)

    def is_current(self, output_path: str, input_path: str) -> bool:
        """True when `output_path` exists as this run would make it from `input_path`."""
        entry = self.outputs.get(os.path.basename(output_path))
        if entry is None or entry.get("settings") != self.settings:
            return False
        try:
            if any(entry.get(key) != value for key, value in input_key(input_path).items()):
                return False
            return os.path.getsize(output_path) == entry.get("bytes")
        except OSError:
            return False

    def split(self, targets: Mapping[str, str], overwrite: bool = False
              ) -> tuple[list[str], list[str]]:
        """Return (inputs to render, outputs already current) of `targets` (input -> output)."""
        if overwrite:
            return list(targets), []
        todo, done = [], []
        for input_path, output_path in targets.items():
            if self.is_current(output_path, input_path):
                done.append(output_path)
            else:
                todo.append(input_path)
        return todo, done

    def record(self, output_path: str, input_path: str, size: int) -> None:
        """Note a written output and rewrite the manifest atomically."""
        self.outputs[os.path.basename(output_path)] = {
            **input_key(input_path), "bytes": int(size), "settings": self.settings}
        atomic.write_json(self.path, {"format_version": FORMAT_VERSION,
                                      "outputs": self.outputs})


def remove_stale_temporaries(output_dir: str, outputs: Iterable[str]) -> list[str]:
    """Remove the temporary files a killed run left for these outputs or the manifest.

    Returns:
      The paths removed.
    """
    names = {os.path.basename(path) for path in outputs} | {MANIFEST_NAME}
    removed = []
    try:
        entries = os.listdir(output_dir)
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry)
        if match and match.group("name") in names:
            path = os.path.join(output_dir, entry)
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                continue
    return removed
