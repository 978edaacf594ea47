"""Render many RAW files with one model: preprocessing || interpreters || assembly || caller.

    paths --> [workers threads: decode (rawpy releases the GIL), plan, cut + encode tiles]
          --> tile queue (bounded: `queue_size` tiles)
          --> [dispatch thread: hands each tile to a pool of `interpreters` threads, each with
               its own interpreter (LiteRT releases the GIL), keeping the tiles' order]
          --> output queue (bounded: `queue_size` tile outputs, pending or done)
          --> [assembly thread: stitch, colour, crop, stretch]
          --> result queue (bounded: 1 image)
          --> the caller, iterating `Engine.run` (e.g. encoding and writing the image)

Several single-threaded interpreters working on different tiles use the cores better than one
interpreter splitting every layer of a small tile across threads (`interpreters=2, threads=1`
on two cores; tools.benchmark measures both). Memory stays bounded: at most `workers` decoded
mosaics, the images being stitched, one finished image waiting and the one the caller holds.
A file that cannot be read gives an `InferenceResult` with its error and the run goes on; a
model failure stops the run.
`serial=True` does the same work in the calling thread, one file after another, for
comparison; both give identical images.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import queue
import threading
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from deepisp_tf.raw.io import RawRecord, read_raw
from deepisp_tf.runtime import pipeline, tiling
from deepisp_tf.runtime.profiling import StageTimes, warm_up

_POLL_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class InferenceResult:
    """One file of a run.

    Attributes:
      index: position of the file in the input list.
      path: the file.
      image: [H', W', 3] uint16 in the reference render's geometry, None on failure.
      tiles: tiles run through the model.
      megapixels: size of the RAW mosaic (0 when it could not be read).
      seconds: latency, from the start of decoding to the finished image.
      error: why the file failed, None on success.
    """

    index: int
    path: str
    image: np.ndarray | None
    tiles: int
    megapixels: float
    seconds: float
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass(frozen=True)
class _Start:
    index: int
    plan: pipeline.ImagePlan
    started: float


@dataclasses.dataclass(frozen=True)
class _Tile:
    index: int
    row: int
    col: int
    values: Any  # the model's input tile, then a Future of its output (as the model stores them)


@dataclasses.dataclass(frozen=True)
class _End:
    index: int
    path: str
    started: float
    error: Exception | None = None


@dataclasses.dataclass(frozen=True)
class _Fatal:
    error: BaseException




def _put(out: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put `item`, waiting while the queue is full; False if the run was stopped."""
    while not stop.is_set():
        try:
            out.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _wake(waiting: queue.Queue) -> None:
    """Hand a thread blocked in `_get(waiting)` the None that ends its loop (if there is room:
    a full queue has no reader waiting)."""
    try:
        waiting.put_nowait(None)
    except queue.Full:
        pass


def _get(source: queue.Queue, stop: threading.Event) -> Any:
    """Get an item, waiting while the queue is empty; None if the run was stopped."""
    while not stop.is_set():
        try:
            return source.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue
    return None


class Engine:
    """Render RAW files with one model runner (see the module docstring).

    Attributes:
      runner: the model (`interpreter.Runner`); used by one thread at a time.
      tile, overlap: tiling of every image.
      interpreters: interpreter threads of a concurrent run (the runner and
        `interpreters - 1` replicas, opened and warmed up here).
      workers: preprocessing threads.
      queue_size: tiles buffered between preprocessing and the interpreter.
      serial: do everything in the calling thread.
      times: time per stage ("decode", "tile", "invoke", "blend", "finish"), or None.
    """

    def __init__(self, runner: pipeline.TileRunner, *, overlap: int | None = None,
                 workers: int = 2, interpreters: int = 1, queue_size: int = 16,
                 serial: bool = False, times: StageTimes | None = None,
                 decode: Callable[[str], RawRecord] | None = None):
        """Set up a run.

        Args:
          runner: an opened model.
          overlap: tile overlap (even, <= tile / 2); None: `pipeline.default_overlap(tile)`.
          workers: preprocessing threads (>= 1).
          interpreters: interpreter threads of a concurrent run (>= 1); more than one needs a
            runner with `replica()` (`interpreter.Runner`).
          queue_size: bounded tile queue length (>= 1).
          serial: run everything in the calling thread.
          times: accumulator of the time per stage.
          decode: path -> RawRecord, thread-safe (default `read_raw`; `isolation.DecoderPool`
            decodes in worker processes).
        """
        if workers < 1 or queue_size < 1 or interpreters < 1:
            raise ValueError(f"workers, interpreters and queue_size must be >= 1, got "
                             f"{workers}, {interpreters}, {queue_size}")
        if interpreters > 1 and not hasattr(runner, "replica"):
            raise ValueError(f"{type(runner).__name__} cannot open replicas: one interpreter "
                             "only")
        self.runner = runner
        self.tile = pipeline.square_tile(runner)
        self.overlap = pipeline.default_overlap(self.tile) if overlap is None else overlap
        tiling.check_tile(self.tile, self.overlap)
        self.quantization = pipeline.runner_quantization(runner)  # (input, output)
        self.workers, self.queue_size, self.serial = workers, queue_size, serial
        self.interpreters = interpreters
        self.times = times
        self._decode = decode or read_raw
        replicas = 0 if serial else interpreters - 1
        self._runners = [runner] + [self._replica() for _ in range(replicas)]

    def _plan(self, path: str) -> pipeline.ImagePlan:
        start = time.perf_counter()
        record = self._decode(path)
        if self.times is not None:
            self.times.add("decode", time.perf_counter() - start)
        return pipeline.plan_record(record, self.tile, self.overlap, self.quantization[0])

    def run(self, paths: Sequence[str | os.PathLike]) -> Iterator[InferenceResult]:
        """Yield one InferenceResult per file: completion order (serial: input order).

        Raises:
          Whatever the model runner raises (a broken model stops the run); unreadable files
          do not raise, they give a result with `error` set.
        """
        paths = [os.fspath(path) for path in paths]
        if self.serial:
            yield from self._run_serial(paths)
        else:
            yield from self._run_concurrent(paths)

    def _run_serial(self, paths: list[str]) -> Iterator[InferenceResult]:
        for index, path in enumerate(paths):
            started = time.perf_counter()
            try:
                plan = self._plan(path)
            except Exception as error:  # pylint: disable=broad-except  # reported per file
                yield InferenceResult(index, path, None, 0, 0.0,
                                      time.perf_counter() - started, error)
                continue
            image, tiles = pipeline.infer_plan(plan, self.runner, self.times)
            yield InferenceResult(index, path, image, tiles, _megapixels(plan),
                                  time.perf_counter() - started)

    def _produce(self, index: int, path: str, out: queue.Queue,
                 stop: threading.Event) -> None:
        """Decode and tile one file into `out` (a worker thread); always ends with _End."""
        started = time.perf_counter()
        if stop.is_set():
            return
        try:
            plan = self._plan(path)
            if not _put(out, _Start(index, plan, started), stop):
                return
            for row, col, bayer in pipeline.timed_tiles(plan, self.times):
                if not _put(out, _Tile(index, row, col, bayer), stop):
                    return
            del plan  # the mosaic is no longer needed once its last tile is cut
        except Exception as error:  # pylint: disable=broad-except  # reported per file
            _put(out, _End(index, path, started, error), stop)
            return
        _put(out, _End(index, path, started), stop)

    def _replica(self) -> pipeline.TileRunner:
        """Open one more copy of the runner's model and run a tile (its first invoke packs the
        weights, which must not count in the run)."""
        replica = self.runner.replica()
        warm_up(replica, 1)
        return replica

    def _invoke(self, free: queue.Queue, bayer: np.ndarray, metadata: np.ndarray | None
                ) -> np.ndarray:
        """Run one tile on a free runner (a pool thread)."""
        runner = free.get()
        try:
            return pipeline.run_tile(runner, bayer, metadata, self.times)
        finally:
            free.put(runner)

    def _dispatch(self, tiles: queue.Queue, outputs: queue.Queue, pool: Any,
                  stop: threading.Event) -> None:
        """Hand queued tiles to the interpreter pool, passing every item on in order as a
        Future of its output (a thread)."""
        metadata: dict[int, np.ndarray | None] = {}
        free: queue.Queue = queue.Queue()
        for runner in self._runners:
            free.put(runner)
        try:
            while True:
                item = _get(tiles, stop)
                if item is None:
                    return
                if isinstance(item, _Start):
                    metadata[item.index] = (item.plan.metadata if self.runner.has_metadata
                                            else None)
                elif isinstance(item, _Tile):
                    output = pool.submit(self._invoke, free, item.values, metadata[item.index])
                    item = _Tile(item.index, item.row, item.col, output)
                elif isinstance(item, _End):
                    metadata.pop(item.index, None)
                if not _put(outputs, item, stop):
                    return
        except BaseException as error:  # pylint: disable=broad-except  # re-raised by run()
            _put(outputs, _Fatal(error), stop)

    def _assemble(self, outputs: queue.Queue, results: queue.Queue,
                  stop: threading.Event) -> None:
        """Blend tile outputs into images; put finished InferenceResults (a thread)."""
        open_images: dict[int, tuple[pipeline.Assembler, float]] = {}
        try:
            while True:
                item = _get(outputs, stop)
                if item is None:
                    return
                if isinstance(item, _Fatal):
                    _put(results, item, stop)
                    return
                if isinstance(item, _Start):
                    open_images[item.index] = (
                        pipeline.Assembler(item.plan, self.quantization[1]),
                        _megapixels(item.plan))
                    continue
                if isinstance(item, _Tile):
                    pipeline.add_tile(open_images[item.index][0], item.row, item.col,
                                      item.values.result(), self.times)
                    continue
                assembler, megapixels = open_images.pop(item.index, (None, 0.0))
                if item.error is not None or assembler is None:
                    result = InferenceResult(item.index, item.path, None, 0, 0.0,
                                             time.perf_counter() - item.started, item.error)
                else:
                    image = pipeline.finish_image(assembler, self.times)
                    result = InferenceResult(item.index, item.path, image, assembler.tiles,
                                             megapixels, time.perf_counter() - item.started)
                if not _put(results, result, stop):
                    return
        except BaseException as error:  # pylint: disable=broad-except  # re-raised by run()
            _put(results, _Fatal(error), stop)

    def _run_concurrent(self, paths: list[str]) -> Iterator[InferenceResult]:
        tiles: queue.Queue = queue.Queue(maxsize=self.queue_size)
        outputs: queue.Queue = queue.Queue(maxsize=self.queue_size)
        results: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, "deepisp-preprocess")
        interpreters = concurrent.futures.ThreadPoolExecutor(len(self._runners),
                                                             "deepisp-interpreter")
        threads = [
            threading.Thread(target=self._dispatch, name="deepisp-dispatch",
                             args=(tiles, outputs, interpreters, stop), daemon=True),
            threading.Thread(target=self._assemble, name="deepisp-assembly",
                             args=(outputs, results, stop), daemon=True)]
        try:
            for index, path in enumerate(paths):
                pool.submit(self._produce, index, path, tiles, stop)
            for thread in threads:
                thread.start()
            for _ in paths:
                item = results.get()
                if isinstance(item, _Fatal):
                    raise item.error
                yield item
        finally:
            stop.set()
            for waiting in (tiles, outputs):  # wake the threads blocked in _get now, not at
                _wake(waiting)                 # their next poll (up to _POLL_SECONDS per run)
            for thread in threads:
                if thread.is_alive():
                    thread.join()
            interpreters.shutdown(wait=True, cancel_futures=True)
            pool.shutdown(wait=True, cancel_futures=True)


def _megapixels(plan: pipeline.ImagePlan) -> float:
    return plan.record.mosaic.size / 1e6
