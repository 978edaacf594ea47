"""Prepare a dataset on Apache Beam: the same per-file work as `prepare`, spread over a runner.

The launcher plans the jobs exactly as `prepare.prepare_files` does (sha256, split, shard
name; files already finished in `output` are skipped, so a rerun resumes), then a pipeline

    Create(jobs) -> Reshuffle -> Map(prepare_one) -> Map(json.dumps) -> WriteToText

runs `prepare_one` on the workers: `tiles.cut_tiles` (decode, reference render, aligned tiles)
and `prepare._finish` (shard written atomically, manifest entry; a bad file becomes an `error`
entry with its reason). The launcher reads the entries back and writes `manifest.json` in
the job order, so the dataset is the one the local path writes: same shards (same names and
records), same entries, same splits.

Every worker must see `output` (and the RAW files) at the same path: a local folder for the
DirectRunner, a shared POSIX mount (NFS, Filestore, a FUSE-mounted bucket) on a cluster.
A decoder that crashes the worker process (not a `RawReadError`) is retried by the runner
and then fails the job, where the local path isolates such a file and reports it.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shlex
import time
import uuid
from typing import Any, Sequence

from deepisp_tf.config import DataConfig, REFERENCE_RENDER_DEFAULTS_NOTE
from deepisp_tf.data import prepare
from deepisp_tf.data import tiles as tiles_lib
from deepisp_tf import atomic
from deepisp_tf.raw.io import sha256_of

ENTRIES_DIR = ".beam_entries"
DEFAULT_OPTIONS = ("--runner=DirectRunner", "--direct_num_workers=2",
                   "--direct_running_mode=multi_processing")


def beam_available() -> str | None:
    """Return None when apache_beam imports, else why not (for skips and error messages)."""
    try:
        import apache_beam  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError as error:
        return f"apache_beam is not importable ({error}); pip install -e '.[beam]'"
    return None


def parse_options(text: str | None) -> tuple[str, ...]:
    """Split a `--beam_options` value into pipeline arguments (None: `DEFAULT_OPTIONS`).

    >>> parse_options("--runner=FlinkRunner --flink_master='host:8081'")
    ('--runner=FlinkRunner', '--flink_master=host:8081')
    """
    return DEFAULT_OPTIONS if text is None else tuple(shlex.split(text))


def plan_jobs(paths: Sequence[str], splits: dict[str, str]) -> list[prepare._Job]:
    """Return one job per file, named as `prepare.prepare_files` names them.

    Args:
      paths: RAW files.
      splits: {file name: split}.
    """
    jobs = []
    for path in paths:
        name = os.path.basename(path)
        digest = sha256_of(path)
        shard = os.path.join("shards", splits[name],
                             f"{prepare.group_of(name)}-{digest[:10]}.tfrecord")
        jobs.append(prepare._Job(path, name, digest, splits[name], shard))  # pylint: disable=W0212
    return jobs


def prepare_one(job: prepare._Job, config: DataConfig, output: str) -> dict[str, Any]:
    """Cut one file's tiles, write its shard and return its manifest entry (runs on a worker).

    The same two steps as a local worker and the local main process: `tiles.cut_tiles`, then
    `prepare._finish` (errors become `error` entries).
    """
    future: concurrent.futures.Future = concurrent.futures.Future()
    try:
        future.set_result(tiles_lib.cut_tiles(job.path, config.tile_size, config.tile_stride,
                                              config.border, config.max_tiles_per_file))
    except Exception as error:  # pylint: disable=broad-except  # _finish turns it into an entry
        future.set_exception(error)
    return prepare._finish(job, future, output)  # pylint: disable=protected-access


def _run_pipeline(jobs: list[prepare._Job], config: DataConfig, output: str,
                  beam_options: Sequence[str]) -> list[dict[str, Any]]:
    """Run `prepare_one` over `jobs` on Beam and return the entries (any order)."""
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
    from apache_beam.options.pipeline_options import (  # pylint: disable=import-outside-toplevel
        DirectOptions, PipelineOptions)

    options = PipelineOptions(list(beam_options))
    workers = options.view_as(DirectOptions).direct_num_workers or 1
    prefix = os.path.join(output, ENTRIES_DIR, uuid.uuid4().hex[:12], "entries")
    with prepare._worker_environment(max(1, workers)):  # pylint: disable=protected-access
        with beam.Pipeline(options=options) as pipeline:
            _ = (pipeline
                 | "Files" >> beam.Create(jobs)
                 | "Spread" >> beam.Reshuffle()
                 | "Prepare" >> beam.Map(prepare_one, config, output)
                 | "Encode" >> beam.Map(json.dumps, sort_keys=True)
                 | "Entries" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl"))
    entries = []
    for match in FileSystems.match([prefix + "*"])[0].metadata_list:
        with FileSystems.open(match.path) as handle:
            entries.extend(json.loads(line) for line in handle.read().decode().splitlines()
                           if line.strip())
    FileSystems.delete([os.path.dirname(prefix)])
    return entries


def prepare_files(paths: list[str], output: str, config: DataConfig, *, source: str,
                  splits: dict[str, str] | None = None,
                  beam_options: Sequence[str] = DEFAULT_OPTIONS,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decode, render and tile RAW files into shards on Beam; resume where a run stopped.

    Args:
      paths: RAW files.
      output: dataset folder (created), visible to every worker at this path.
      config: tiling settings; splits default to its fractions.
      source: label written in the manifest.
      splits: {file name: split}; default `prepare.assign_splits` with the config's fractions.
      beam_options: Beam pipeline arguments, e.g. ("--runner=FlinkRunner", ...).
      extra: additional manifest fields.

    Returns:
      The manifest (also `output/manifest.json`), as `prepare.prepare_files` writes it.

    Raises:
      PrepareError: apache_beam is missing, or `output` holds another preparation.
    """
    missing = beam_available()
    if missing:
        raise prepare.PrepareError(missing)
    config.validate()
    os.makedirs(output, exist_ok=True)
    previous = prepare.load_manifest(output) or {}
    if previous and previous.get("settings") != prepare.settings_of(config):
        raise prepare.PrepareError(f"{output}: prepared with other settings "
                                   f"{previous.get('settings')}; use a new --output folder")
    splits = splits or prepare.assign_splits(paths, config.val_fraction, config.test_fraction,
                                             seed=config.seed)
    jobs = plan_jobs(paths, splits)
    known = {entry["name"]: entry for entry in previous.get("files", [])}
    entries = {job.name: known[job.name] for job in jobs
               if prepare._is_done(known.get(job.name), job, output)}  # pylint: disable=W0212
    pending = [job for job in jobs if job.name not in entries]
    for split in prepare.SPLITS:
        os.makedirs(os.path.join(output, "shards", split), exist_ok=True)
    started = time.perf_counter()
    if pending:
        entries.update((entry["name"], entry)
                       for entry in _run_pipeline(pending, config, output, beam_options))
    files = [entries[job.name] for job in jobs if job.name in entries]
    manifest: dict[str, Any] = {
        "format_version": prepare.FORMAT_VERSION, "source": source,
        "settings": prepare.settings_of(config),
        "reference_render_note": REFERENCE_RENDER_DEFAULTS_NOTE, **(extra or {}),
        "files": files, "splits": prepare.summarize_splits(files),
        "complete": len(files) == len(jobs), "seconds": round(time.perf_counter() - started, 3),
        "runner": "beam"}
    atomic.write_json(os.path.join(output, prepare.MANIFEST), manifest)
    return manifest
