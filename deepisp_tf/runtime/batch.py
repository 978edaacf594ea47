"""Render a batch of RAW files to images: what `python -m tools.infer` does.

Inputs are files or folders (their RAW candidates, sidecars and rendered images skipped). Every
output is DIR/<stem>.<fmt>, written atomically; an output that would replace an input or
another input's output is refused for that file. A file that fails is reported with its reason
and the batch goes on. Encoding and writing run in `writers` threads (OpenCV's and tifffile's
encoders release the GIL) while the engine's threads decode and render the next files; at most
`writers + 1` finished images wait to be written, so memory stays bounded. With
`resume_outputs` the outputs DIR/.deepisp_outputs.json records as made by the same model and
settings are skipped (`resume`); with `isolate` decoding runs in worker processes with a time
limit per file (`isolation`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import os
import time
from typing import Any, Sequence

from deepisp_tf import atomic
from deepisp_tf.raw.files import RawFolderError, list_raw_files
from deepisp_tf.raw.io import RawReadError
from deepisp_tf.runtime import isolation, output, resume
from deepisp_tf.runtime.engine import Engine
from deepisp_tf.runtime.pipeline import TileRunner
from deepisp_tf.runtime.profiling import StageTimes

RENDERED_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass(frozen=True)
class Failure:
    """A file that produced no output, and why."""

    path: str
    reason: str


@dataclasses.dataclass
class BatchSummary:
    """What a batch did.

    Attributes:
      outputs: images written.
      skipped: outputs already made by the same model and settings (not rendered again).
      failures: files that failed, with the reason.
      megapixels: RAW megapixels rendered.
      output_megapixels: megapixels of the images written.
      bytes: size of the files written.
      seconds: wall time of the batch.
      times: time per stage.
    """

    outputs: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failures: list[Failure] = dataclasses.field(default_factory=list)
    megapixels: float = 0.0
    output_megapixels: float = 0.0
    bytes: int = 0
    seconds: float = 0.0
    times: StageTimes = dataclasses.field(default_factory=StageTimes)

    @property
    def files(self) -> int:
        return len(self.outputs) + len(self.skipped) + len(self.failures)

    @property
    def all_failed(self) -> bool:
        return not self.outputs and not self.skipped


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[str], list[Failure]]:
    """Expand files and folders into RAW candidates.

    Args:
      inputs: RAW files or folders (a folder contributes its files, not its subfolders,
        skipping hidden files, sidecars and .png/.jpg renders).

    Returns:
      (paths, failures): the candidates in order without duplicates, and inputs that do not
      exist or are empty folders.
    """
    paths: list[str] = []
    failures: list[Failure] = []
    for item in map(os.fspath, inputs):
        if os.path.isdir(item):
            try:
                found = [path for path in list_raw_files(item)
                         if not path.lower().endswith(RENDERED_EXTENSIONS)]
            except RawFolderError as error:
                failures.append(Failure(item, str(error)))
                continue
            if not found:
                failures.append(Failure(item, "folder holds no RAW files"))
            paths.extend(found)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            failures.append(Failure(item, "no such file or folder"))
    unique = list(dict.fromkeys(os.path.abspath(path) for path in paths))
    return unique, failures


def plan_outputs(paths: Sequence[str], output_dir: str, fmt: str
                 ) -> tuple[dict[str, str], list[Failure]]:
    """Map every input to DIR/<stem>.<fmt>, refusing overwrites of inputs and collisions.

    Returns:
      (outputs, failures): input -> output for the files to render, and the refused files.
    """
    inputs = {os.path.realpath(path) for path in paths}
    outputs: dict[str, str] = {}
    claimed: dict[str, str] = {}
    failures: list[Failure] = []
    for path in paths:
        target = output.output_path(output_dir, path, fmt)
        real = os.path.realpath(target)
        if real in inputs:
            failures.append(Failure(path, f"output {target} would overwrite an input"))
        elif real in claimed:
            failures.append(Failure(path, f"output {target} is already the output of "
                                          f"{claimed[real]} (same file name stem)"))
        else:
            claimed[real] = path
            outputs[path] = target
    return outputs, failures


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    return tqdm(total=total, unit="file", disable=not enabled, dynamic_ncols=True)


def _encode_and_write(path: str, image: Any, fmt: str, png_mode: str,
                      times: StageTimes) -> int:
    """Encode and atomically write one image (a writer thread); return the bytes written."""
    start = time.perf_counter()
    data = output.encode_image(image, fmt, png_mode)
    encoded = time.perf_counter()
    atomic.write_bytes(path, data)
    times.add("encode", encoded - start)
    times.add("write", time.perf_counter() - encoded)
    return len(data)


def infer_files(inputs: Sequence[str | os.PathLike], runner: TileRunner, output_dir: str, *,
                fmt: str = "png", workers: int = 2, interpreters: int = 1,
                overlap: int | None = None, queue_size: int = 16, writers: int = 2,
                png_mode: str = output.DEFAULT_PNG_MODE, progress: bool = True,
                resume_outputs: bool = False, overwrite: bool = False, isolate: bool = False,
                decode_timeout: float = isolation.DEFAULT_TIMEOUT_SECONDS) -> BatchSummary:
    """Render RAW files with a model and write DIR/<stem>.<ext> for each.

    Args:
      inputs: RAW files or folders.
      runner: the opened model (`interpreter.Runner`).
      output_dir: where to write (created).
      fmt: "png" (16-bit), "jpg" (8-bit), "tiff" (16-bit deflate) or "tiff_raw" (16-bit
        uncompressed).
      workers: preprocessing threads.
      interpreters: interpreter threads, each with its own copy of the model.
      overlap: tile overlap; None for the default.
      queue_size: tiles buffered between preprocessing and the interpreter.
      writers: encoding + writing threads (>= 1).
      png_mode: `output.PNG_MODES` key.
      progress: show a tqdm progress bar.
      resume_outputs: skip outputs DIR/.deepisp_outputs.json records as made by this model
        and these settings (`resume`), and record every output written.
      overwrite: with resume_outputs, render every file anyway.
      isolate: decode in `workers` worker processes (`isolation`): a file that crashes or
        hangs the decoder fails alone.
      decode_timeout: seconds one file's decoding may take when isolated.

    Returns:
      The BatchSummary (outputs, failures with reasons, megapixels, bytes, seconds).
    """
    if writers < 1:
        raise ValueError(f"writers must be >= 1, got {writers}")
    if png_mode not in output.PNG_MODES:
        raise ValueError(f"unknown PNG mode {png_mode!r}: one of {', '.join(output.PNG_MODES)}")
    started = time.perf_counter()
    summary = BatchSummary()
    paths, summary.failures = collect_inputs(inputs)
    targets, refused = plan_outputs(paths, output_dir, fmt)
    summary.failures.extend(refused)
    os.makedirs(output_dir, exist_ok=True)
    decoders = isolation.DecoderPool(workers, decode_timeout) if isolate else None
    try:
        engine = Engine(runner, overlap=overlap, workers=workers, interpreters=interpreters,
                        queue_size=queue_size, times=summary.times,
                        decode=decoders.decode if decoders else None)
    except BaseException:
        if decoders is not None:
            decoders.close()
        raise
    todo = list(targets)
    manifest = None
    if resume_outputs:
        manifest = resume.Manifest(output_dir, resume.render_settings(
            runner, engine.overlap, fmt, png_mode))
        resume.remove_stale_temporaries(output_dir, targets.values())
        todo, summary.skipped = manifest.split(targets, overwrite)
    pending: collections.deque = collections.deque()

    def collect(bar: Any) -> None:
        path, megapixels, future = pending.popleft()
        try:
            size = future.result()
            summary.bytes += size
        except (OSError, ValueError) as error:
            summary.failures.append(Failure(path, f"cannot write {targets[path]}: {error}"))
            bar.write(f"failed: {path}: cannot write: {error}")
            return
        summary.outputs.append(targets[path])
        if manifest is not None:
            manifest.record(targets[path], path, size)
        summary.megapixels += megapixels[0]
        summary.output_megapixels += megapixels[1]
        bar.set_postfix_str(f"{summary.megapixels:.1f} MP")

    with _progress(len(todo), progress) as bar, \
            (decoders or contextlib.nullcontext()), \
            concurrent.futures.ThreadPoolExecutor(writers, "deepisp-writer") as pool:
        for result in engine.run(todo):
            bar.update(1)
            if not result.ok:
                summary.failures.append(Failure(result.path, _reason(result.error)))
                bar.write(f"failed: {result.path}: {_reason(result.error)}")
                continue
            height, width = result.image.shape[:2]
            pending.append((result.path, (result.megapixels, height * width / 1e6),
                            pool.submit(_encode_and_write, targets[result.path], result.image,
                                        fmt, png_mode, summary.times)))
            del result
            while len(pending) > writers:
                collect(bar)
        while pending:
            collect(bar)
    summary.seconds = time.perf_counter() - started
    return summary


def _reason(error: Exception | None) -> str:
    """Return why a file failed, without its path (Failure.path holds it)."""
    if isinstance(error, RawReadError):
        return error.reason
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"


def format_summary(summary: BatchSummary) -> str:
    """Return the end-of-run summary: files, megapixels, seconds, failures with reasons."""
    rate = summary.megapixels / summary.seconds if summary.seconds else 0.0
    skipped = f"{len(summary.skipped)} already made, " if summary.skipped else ""
    lines = [f"files: {summary.files} ({len(summary.outputs)} written, {skipped}"
             f"{len(summary.failures)} failed)",
             f"megapixels: {summary.megapixels:.1f} RAW, {summary.output_megapixels:.1f} "
             f"written ({summary.bytes / 1e6:.1f} MB)",
             f"seconds: {summary.seconds:.1f} ({rate:.2f} MP/s)"]
    lines += [f"FAILED {failure.path}: {failure.reason}" for failure in summary.failures]
    return "\n".join(lines)
