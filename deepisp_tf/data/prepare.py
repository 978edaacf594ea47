"""Prepare a dataset: RAW files -> aligned tiles in TFRecord shards + `manifest.json`.

Files are decoded and rendered in parallel worker processes (one OpenMP thread each, so LibRaw's
workers do not fight over the cores); the main process writes one shard per file, atomically
(temporary name, then rename), and rewrites the manifest after every file, so a run killed at
any moment resumes without redoing finished files and never leaves a corrupt shard. The split is
by source group (a file, or all synthetic variants of one photo), never by tile.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import multiprocessing
import os
import time
from typing import Any, Iterable, Iterator

from deepisp_tf.config import (DataConfig, REFERENCE_RENDER_DEFAULTS_NOTE,
                               REFERENCE_RENDER_SETTINGS)
from deepisp_tf.data import tiles as tiles_lib
from deepisp_tf import atomic
from deepisp_tf.raw import synthetic
from deepisp_tf.raw.files import SIDECAR_EXTENSIONS, list_raw_files  # noqa: F401 (re-used API)
from deepisp_tf.raw.io import RawReadError, sha256_of

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


class PrepareError(Exception):
    """The preparation cannot start or produced nothing usable."""


def group_of(name: str) -> str:
    """Return the split group of a file: synthetic variants `<photo>__v<k>.dng` share `<photo>`.

    Any other file is its own group (its stem).
    """
    try:
        return synthetic.group_of(name)
    except ValueError:
        return os.path.splitext(os.path.basename(name))[0]


def assign_splits(names: Iterable[str], val_fraction: float, test_fraction: float,
                  val_patterns: Iterable[str] = (), test_patterns: Iterable[str] = (),
                  seed: int = 0) -> dict[str, str]:
    """Assign every file to train/val/test by group, never splitting a group.

    Files matching a test (val) glob go to test (val) with their whole group: that is how whole
    cameras are held out. The other groups are ordered by a seeded hash of their name and cut by
    the fractions (at least one group each for val and test when there are three or more).

    Returns:
      {file name: split}.

    Raises:
      ValueError: a val or test glob matches none of the files (a typo would otherwise hold
        nothing out, silently).
    """
    names = [os.path.basename(n) for n in names]
    for split, patterns in (("val", val_patterns), ("test", test_patterns)):
        for pattern in patterns:
            if not any(fnmatch.fnmatch(name, pattern) for name in names):
                raise ValueError(f"the {split} glob {pattern!r} matches none of the "
                                 f"{len(names)} file names (globs match names, not paths)")
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(group_of(name), []).append(name)
    fixed: dict[str, str] = {}
    for split, patterns in (("test", test_patterns), ("val", val_patterns)):
        for group, members in groups.items():
            if group not in fixed and any(fnmatch.fnmatch(m, p) for m in members
                                          for p in patterns):
                fixed[group] = split
    free = sorted((g for g in groups if g not in fixed),
                  key=lambda g: hashlib.sha1(f"{seed}:{g}".encode()).hexdigest())

    def count(fraction: float) -> int:
        wanted = round(fraction * len(free))
        return max(wanted, 1) if fraction > 0 and len(free) >= 3 else wanted

    n_test, n_val = count(test_fraction), count(val_fraction)
    for index, group in enumerate(free):
        fixed[group] = "test" if index < n_test else "val" if index < n_test + n_val else "train"
    return {name: fixed[group_of(name)] for name in names}


def settings_of(config: DataConfig) -> dict[str, Any]:
    """Return the settings that make two preparations interchangeable."""
    return {"tile_size": config.tile_size, "tile_stride": config.tile_stride,
            "border": config.border, "max_tiles_per_file": config.max_tiles_per_file,
            "reference_render": REFERENCE_RENDER_SETTINGS}


def load_manifest(output: str) -> dict[str, Any] | None:
    """Return the manifest in `output`, or None when there is none."""
    path = os.path.join(output, MANIFEST)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@contextlib.contextmanager
def _worker_environment(workers: int) -> Iterator[None]:
    """Set OMP_NUM_THREADS for worker processes started inside the block.

    Spawned workers inherit the environment when they start, before they import anything
    (they re-import the entry point, which may import rawpy), so this is the only reliable
    place: LibRaw's OpenMP then uses the cores divided among the workers, one thread each
    when there are as many workers as cores.
    """
    threads = max(1, (os.cpu_count() or 1) // workers)
    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = previous


def _write_shard(path: str, file_tiles: tiles_lib.FileTiles) -> None:
    """Write one file's tiles to a TFRecord shard atomically."""
    from deepisp_tf.data import tfrecord  # pylint: disable=import-outside-toplevel
    name = file_tiles.info["name"]
    with atomic.replacing(path) as temporary, tfrecord.tf.io.TFRecordWriter(temporary) as writer:
        for mosaic, target, offset in zip(file_tiles.mosaics, file_tiles.targets,
                                          file_tiles.offsets):
            writer.write(tfrecord.encode_example(
                mosaic, target, file_tiles.black_levels, file_tiles.white_level,
                file_tiles.wb_gains, file_tiles.cam_to_srgb, name, tuple(offset),
                site_gains=file_tiles.site_gains))


@dataclasses.dataclass
class _Job:
    path: str
    name: str
    sha256: str
    split: str
    shard: str  # relative to the output folder


def _is_done(entry: dict[str, Any] | None, job: _Job, output: str) -> bool:
    return bool(entry and entry.get("status") == "ok" and entry.get("sha256") == job.sha256
                and os.path.exists(os.path.join(output, entry["shard"])))


def summarize_splits(files: list[dict[str, Any]]) -> dict[str, Any]:
    splits = {s: {"files": 0, "tiles": 0, "shards": []} for s in SPLITS}
    for entry in files:
        if entry["status"] == "ok":
            split = splits[entry["split"]]
            split["files"] += 1
            split["tiles"] += entry["tiles"]
            split["shards"].append(entry["shard"])
    return splits


def prepare_files(paths: list[str], output: str, config: DataConfig, *, source: str,
                  splits: dict[str, str] | None = None, workers: int | None = None,
                  progress: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decode, render and tile RAW files into shards; resume where a previous run stopped.

    Args:
      paths: RAW files.
      output: dataset folder (created).
      config: tiling settings (DataConfig); splits default to its fractions.
      source: label written in the manifest ("raw_dir", "synthetic", ...).
      splits: {file name: split}; default `assign_splits` with the config's fractions.
      workers: worker processes (default: CPU count).
      progress: show a tqdm progress bar.
      extra: additional manifest fields.

    Returns:
      The manifest (also written to `output/manifest.json`).

    Raises:
      PrepareError: `output` holds a dataset prepared with other settings.
    """
    config.validate()
    os.makedirs(output, exist_ok=True)
    previous = load_manifest(output) or {}
    if previous and previous.get("settings") != settings_of(config):
        raise PrepareError(f"{output}: prepared with other settings {previous.get('settings')}; "
                           "use a new --output folder")
    splits = splits or assign_splits(paths, config.val_fraction, config.test_fraction,
                                     seed=config.seed)
    known = {entry["name"]: entry for entry in previous.get("files", [])}
    jobs = []
    for path in paths:
        name = os.path.basename(path)
        digest = sha256_of(path)
        shard = os.path.join("shards", splits[name], f"{group_of(name)}-{digest[:10]}.tfrecord")
        jobs.append(_Job(path, name, digest, splits[name], shard))
    entries = {job.name: known[job.name] for job in jobs if _is_done(known.get(job.name), job,
                                                                     output)}
    pending = [job for job in jobs if job.name not in entries]
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION, "source": source, "settings": settings_of(config),
        "reference_render_note": REFERENCE_RENDER_DEFAULTS_NOTE, "complete": False,
        **(extra or {})}

    def save() -> None:
        files = [entries[job.name] for job in jobs if job.name in entries]
        manifest.update(files=files, splits=summarize_splits(files))
        atomic.write_json(os.path.join(output, MANIFEST), manifest)

    for split in SPLITS:
        os.makedirs(os.path.join(output, "shards", split), exist_ok=True)
    started = time.perf_counter()
    with _progress_bar(len(jobs), len(jobs) - len(pending), progress) as bar:
        def finished(job: _Job, future: concurrent.futures.Future) -> None:
            entries[job.name] = _finish(job, future, output)
            save()
            bar.update(1)

        crashed = _run_pool(pending, config, workers, finished)
        for job in crashed:  # a decoder crash kills the pool: isolate each suspect alone
            if not _run_pool([job], config, 1, finished):
                continue
            entries[job.name] = {**_entry(job), "status": "error",
                                 "reason": "the RAW decoder crashed on this file"}
            save()
            bar.update(1)
    manifest["complete"] = True
    manifest["seconds"] = round(time.perf_counter() - started, 3)
    save()
    return manifest


def _run_pool(jobs: list[_Job], config: DataConfig, workers: int | None,
              finished: Any) -> list[_Job]:
    """Cut tiles of `jobs` in spawned worker processes; return the jobs lost to a pool crash."""
    if not jobs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    context = multiprocessing.get_context("spawn")
    crashed = []
    with _worker_environment(workers), \
            concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(tiles_lib.cut_tiles, job.path, config.tile_size,
                               config.tile_stride, config.border,
                               config.max_tiles_per_file): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            if isinstance(future.exception(), concurrent.futures.process.BrokenProcessPool):
                crashed.append(futures[future])
            else:
                finished(futures[future], future)
    return crashed


def _entry(job: _Job) -> dict[str, Any]:
    return {"name": job.name, "path": os.path.abspath(job.path), "sha256": job.sha256,
            "split": job.split, "group": group_of(job.name)}


def _finish(job: _Job, future: concurrent.futures.Future, output: str) -> dict[str, Any]:
    """Write a finished file's shard and return its manifest entry (errors become entries)."""
    entry = _entry(job)
    try:
        file_tiles = future.result()
    except RawReadError as error:
        return {**entry, "status": "error", "reason": error.reason}
    except Exception as error:  # pylint: disable=broad-except  # a worker crash names the file
        return {**entry, "status": "error", "reason": f"{type(error).__name__}: {error}"}
    _write_shard(os.path.join(output, job.shard), file_tiles)
    return {**entry, **file_tiles.info, "status": "ok", "shard": job.shard}


class _NoBar:
    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, _: int) -> None:
        return None


def _progress_bar(total: int, done: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    return tqdm(total=total, initial=done, unit="file", desc="prepare")


def format_summary(manifest: dict[str, Any]) -> str:
    """Return a Markdown table of splits, plus the failed files with their reasons."""
    lines = ["| split | files | tiles |", "|---|---:|---:|"]
    for split in SPLITS:
        info = manifest["splits"][split]
        lines.append(f"| {split} | {info['files']} | {info['tiles']} |")
    errors = [entry for entry in manifest["files"] if entry["status"] != "ok"]
    lines.append("")
    lines.append(f"{len(manifest['files']) - len(errors)} files ok, {len(errors)} failed "
                 f"(source: {manifest['source']}, tile {manifest['settings']['tile_size']})")
    lines.extend(f"  FAILED {entry['name']}: {entry['reason']}" for entry in errors)
    return "\n".join(lines)


def usable(manifest: dict[str, Any]) -> bool:
    """Return True when the dataset has at least one training tile."""
    return manifest["splits"]["train"]["tiles"] > 0
