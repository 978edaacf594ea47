"""Measuring the runtime: time per stage across threads, latency percentiles, CPU, peak RSS.

Linux-first (peak RSS from /proc, resettable through /proc/self/clear_refs), with a
`resource.getrusage` fallback elsewhere. No TensorFlow, no psutil.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import resource
import threading
import time
from typing import Any

import numpy as np

from deepisp_tf.constants import METADATA_SIZE

PERCENTILES = (50, 90, 99)


class StageTimes:
    """Thread-safe wall-time accumulator per stage ("decode", "tile", "invoke", ...).

    Every duration is kept, so percentiles of any stage (e.g. the per-tile "invoke" latency)
    can be reported; in a concurrent run the stages of different threads overlap, so their sum
    can exceed the wall time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._durations: dict[str, list[float]] = collections.defaultdict(list)

    def add(self, stage: str, seconds: float) -> None:
        """Record one duration of `stage`."""
        with self._lock:
            self._durations[stage].append(seconds)

    def durations(self, stage: str) -> list[float]:
        """Return a copy of the recorded durations of `stage` (seconds)."""
        with self._lock:
            return list(self._durations.get(stage, ()))

    def totals(self) -> dict[str, float]:
        """Return the summed seconds of every stage."""
        with self._lock:
            return {stage: float(sum(values)) for stage, values in self._durations.items()}

    def counts(self) -> dict[str, int]:
        """Return how many durations every stage recorded."""
        with self._lock:
            return {stage: len(values) for stage, values in self._durations.items()}


def percentiles_ms(seconds: list[float] | np.ndarray,
                   percentiles: tuple[int, ...] = PERCENTILES) -> dict[str, float | None]:
    """Return {"p50": ms, "p90": ms, "p99": ms, "mean": ms} of durations in seconds.

    Values are None when there are no durations.
    """
    keys = [f"p{p}" for p in percentiles] + ["mean"]
    if len(seconds) == 0:
        return dict.fromkeys(keys)
    values = np.asarray(seconds, np.float64) * 1000
    result = {f"p{p}": float(np.percentile(values, p)) for p in percentiles}
    result["mean"] = float(values.mean())
    return result


def reset_peak_rss() -> bool:
    """Reset the process' peak RSS to its current RSS (Linux); return whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _status_bytes(pid: int | str, key: str) -> int | None:
    """Return a "<key>: N kB" line of /proc/<pid>/status in bytes, None if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_bytes() -> int:
    """Return the process' peak resident set size in bytes (since start or the last reset)."""
    peak = _status_bytes("self", "VmHWM")
    if peak is not None:
        return peak
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def children_rss_bytes() -> int:
    """Return the summed current RSS of the live child processes and their descendants (e.g.
    the isolated decoders); 0 without /proc."""
    return sum(_status_bytes(child, "VmRSS") or 0 for child in _descendants())


def _descendants(pid: int | str = "self") -> list[int]:
    """Return the live child processes of `pid`, their children, and so on."""
    found = []
    for child in _child_pids(pid):
        found += [child] + _descendants(child)
    return found


class _ChildrenRssSampler(threading.Thread):
    """Sample `children_rss_bytes` every `interval` seconds until stopped; keep the largest."""

    def __init__(self, interval: float):
        super().__init__(name="deepisp-rss-sampler", daemon=True)
        self.interval, self.peak = interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, children_rss_bytes())
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> int:
        """Stop sampling (after one last sample); return the peak."""
        self._stop_event.set()
        self.join()
        return max(self.peak, children_rss_bytes())


def _child_pids(pid: int | str = "self") -> list[int]:
    """Return the live child processes of `pid` (Linux /proc/<pid>/task/*/children; [] where
    the kernel does not expose it)."""
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                children.extend(int(child) for child in handle.read().split())
    except OSError:
        pass
    return children


def _process_ticks(pid: int) -> int:
    """Return the user + system clock ticks of a live process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds() -> float:
    """Return the user + system CPU seconds so far of this process (all threads) and of its
    child processes, live (e.g. `isolation.DecoderPool`'s decoders, from /proc) or ended.

    `time.process_time` reads CLOCK_PROCESS_CPUTIME_ID (nanosecond resolution); children count
    in clock ticks (10 ms), so a short run's children may read 0.
    """
    times = os.times()
    ticks = sum(_process_ticks(child) for child in _descendants())
    return (time.process_time() + times.children_user + times.children_system
            + ticks / os.sysconf("SC_CLK_TCK"))


@dataclasses.dataclass
class Measurement:
    """Wall time, CPU time and peak RSS of a block of code (see `measure`).

    Attributes:
      seconds: wall time.
      cpu_seconds: user + system CPU time of the process and its child processes.
      peak_rss_bytes: peak RSS during the block (since the process started if the peak could
        not be reset).
      peak_rss_reset: whether the peak was reset at the start, i.e. is specific to the block.
      children_peak_rss_bytes: the largest summed RSS of the child processes (e.g. the
        isolated decoders, also those that ended during the block), sampled every
        `CHILDREN_RSS_INTERVAL` seconds.
    """

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_rss_reset: bool = False
    children_peak_rss_bytes: int = 0

    def cpu_utilization(self, cores: int | None = None) -> float:
        """Return CPU time / (wall time x cores): 1.0 means every core busy all the time."""
        cores = cores or os.cpu_count() or 1
        return self.cpu_seconds / max(self.seconds, 1e-9) / cores

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
                "cpu_utilization": self.cpu_utilization(), "cores": os.cpu_count(),
                "peak_rss_mb": self.peak_rss_bytes / 2**20,
                "peak_rss_reset": self.peak_rss_reset,
                "children_peak_rss_mb": self.children_peak_rss_bytes / 2**20}


CHILDREN_RSS_INTERVAL = 0.02  # seconds between samples of the child processes' RSS


class measure:  # pylint: disable=invalid-name  # used as a context manager, like a function
    """Context manager filling a Measurement: `with measure() as m: ...; m.seconds`."""

    def __init__(self) -> None:
        self.result = Measurement()
        self._start = self._cpu = 0.0
        self._sampler: _ChildrenRssSampler | None = None

    def __enter__(self) -> Measurement:
        self.result.peak_rss_reset = reset_peak_rss()
        self._sampler = _ChildrenRssSampler(CHILDREN_RSS_INTERVAL)
        self._sampler.start()
        self._cpu = cpu_seconds()
        self._start = time.perf_counter()
        return self.result

    def __exit__(self, *exc: Any) -> None:
        self.result.seconds = time.perf_counter() - self._start
        self.result.cpu_seconds = cpu_seconds() - self._cpu
        self.result.peak_rss_bytes = peak_rss_bytes()
        self.result.children_peak_rss_bytes = self._sampler.stop()


WARMUP_RUNS = 2  # XNNPACK packs the weights on the first invoke; the second settles caches


def warm_up(runner: Any, runs: int = WARMUP_RUNS) -> None:
    """Run `runs` zero tiles through a runner (`interpreter.Runner` or any tile runner), so
    weight packing and first-touch allocations do not count in what is timed next."""
    height, width = runner.tile_shape
    tile = np.zeros((height, width), np.float32)
    metadata = np.zeros(METADATA_SIZE, np.float32) if runner.has_metadata else None
    for _ in range(runs):
        runner.run(tile, metadata)


def latency_ms(runner: Any, runs: int, seed: int = 0, warmup: int = WARMUP_RUNS) -> float:
    """Return the median wall time (ms) of one `run` of a tile of uniform random values.

    Args:
      runner: an opened model (`interpreter.Runner` or any tile runner).
      runs: timed runs (>= 1), after `warm_up(runner, warmup)`.
      seed: of the random tile and metadata.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    rng = np.random.default_rng(seed)
    bayer = rng.uniform(0, 1, runner.tile_shape).astype(np.float32)
    metadata = rng.normal(0, 1, METADATA_SIZE).astype(np.float32) if runner.has_metadata else None
    warm_up(runner, warmup)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(bayer, metadata)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)
