"""Decode RAW files in worker processes: a file that crashes or hangs LibRaw loses only itself.

`DecoderPool(workers, timeout)` keeps `workers` processes, started with the pool so their
imports overlap opening the model (`python -c` children: the caller's `__main__` is not
re-imported; OMP_NUM_THREADS=1 in their environment before rawpy loads, so LibRaw does not spread
over the cores the interpreters use). `decode(path)` (the engine's decode step) and
`load(path, with_reference)` (tools.evaluate) send the path to an idle worker, which runs
`raw.io.read_raw` and returns the record over a socket, its arrays handed over in files of
/dev/shm (RAM): +3 ms/MP on a 24 MP DNG, where pickling them through the socket cost 12-25 ms/MP
on the same host (docs/python_api.md). Thread-safe: each call holds one worker. A worker that
dies (e.g. SIGSEGV in LibRaw) or passes the per-file time limit is replaced and the file
raises `RawReadError` with the reason ("decoder crashed (SIGSEGV)", "decoder timed out after
120 s"); the other files go on.

Tests inject faults through $DEEPISP_DECODER_FAULT ("segfault=NAME,hang=NAME": a worker
decoding a file whose name contains NAME kills itself with SIGSEGV, or sleeps): only the
isolated decoder reads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing import connection
from typing import Any

import numpy as np

from deepisp_tf.raw.io import RawReadError, RawRecord

DEFAULT_TIMEOUT_SECONDS = 120.0
START_TIMEOUT_SECONDS = 120.0  # a worker's imports, before its first file (not the file's limit)
FAULT_ENV = "DEEPISP_DECODER_FAULT"
WORKER_ENV = {"OMP_NUM_THREADS": "1"}
SHARED_DIR = "/dev/shm"  # RAM-backed on Linux; without it arrays cross the socket (slower)
SHARED_PREFIX = "deepisp-decoder-"
_READY = "ready"


def remove_shared_files(pid: int) -> None:
    """Remove what a (killed) worker left in SHARED_DIR."""
    for path in glob.glob(os.path.join(SHARED_DIR, f"{SHARED_PREFIX}{pid}-*")):
        with contextlib.suppress(OSError):
            os.unlink(path)


def parse_faults(spec: str) -> dict[str, str]:
    """Return {name part: "segfault" | "hang"} from "segfault=NAME,hang=NAME" (tests only)."""
    faults = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, _, name = item.partition("=")
        if kind not in ("segfault", "hang") or not name:
            raise ValueError(f"${FAULT_ENV}: expected segfault=NAME or hang=NAME, got {item!r}")
        faults[name] = kind
    return faults


def _inject_fault(path: str, faults: dict[str, str]) -> None:
    for name, kind in faults.items():
        if name in os.path.basename(path):
            if kind == "segfault":
                os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(3600)


@dataclasses.dataclass(frozen=True)
class _Shared:
    """An array handed over in a file of SHARED_DIR (RAM): far cheaper than the socket."""

    path: str
    shape: tuple[int, ...]
    dtype: str


def _export(array: np.ndarray, stem: str) -> Any:
    """Worker side: write `array` into a shared-memory file; the array itself without one."""
    if not os.path.isdir(SHARED_DIR):
        return array
    path = os.path.join(SHARED_DIR, f"{stem}.npy")
    array.tofile(path)
    return _Shared(path, tuple(array.shape), array.dtype.str)


def _import(value: Any) -> np.ndarray:
    """Caller side: read an exported array back and remove its file."""
    if not isinstance(value, _Shared):
        return value
    try:
        return np.fromfile(value.path, np.dtype(value.dtype)).reshape(value.shape)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(value.path)


def _export_value(value: Any, stem: str) -> Any:
    """Move the mosaic (and reference) of read_raw's value into shared-memory files."""
    if isinstance(value, tuple):
        record, reference = value
        return (_export_value(record, stem), _export(reference, stem + "-reference"))
    return dataclasses.replace(value, mosaic=_export(value.mosaic, stem + "-mosaic"))


def _import_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return (_import_value(value[0]), _import(value[1]))
    return dataclasses.replace(value, mosaic=_import(value.mosaic))


def _worker_main(pipe: Any) -> None:
    """A decoder process: read (path, with_reference, settings) requests until None or EOF."""
    os.environ.update(WORKER_ENV)  # also set by the parent at spawn; before rawpy loads
    from deepisp_tf.raw import io  # pylint: disable=import-outside-toplevel
    faults = parse_faults(os.environ.get(FAULT_ENV, ""))
    pipe.send(_READY)
    for count in itertools.count():
        try:
            request = pipe.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, with_reference, settings = request
        _inject_fault(path, faults)
        try:
            value: Any = ("ok", _export_value(
                io.read_raw(path, with_reference=with_reference, render_settings=settings),
                f"{SHARED_PREFIX}{os.getpid()}-{count}"))
        except RawReadError as error:
            value = ("error", error)
        except Exception as error:  # pylint: disable=broad-except  # sent back as the reason
            value = ("error", RawReadError(path, f"{type(error).__name__}: {error}"))
        pipe.send(value)


def _child_environment() -> dict[str, str]:
    """Return the worker's environment: ours, OMP_NUM_THREADS=1, this package importable."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, **WORKER_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def serve(fd: int) -> None:
    """Entry point of a worker process: serve requests on the connection at file descriptor fd."""
    _worker_main(connection.Connection(fd))


def exit_reason(exitcode: int | None) -> str:
    """Return how a worker ended: 'SIGSEGV', 'exit code 3', ..."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class _Worker:
    """One decoder process and its end of the pipe."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        code = f"from deepisp_tf.runtime.isolation import serve; serve({theirs.fileno()})"
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with  # kill() ends it
            [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            env=_child_environment())
        theirs.close()
        self.connection = connection.Connection(ours.detach())
        self.ready = False

    def wait_ready(self) -> None:
        """Wait for the worker's imports (once; not counted in a file's time limit)."""
        if self.ready:
            return
        if not self.connection.poll(START_TIMEOUT_SECONDS) or self._recv() != _READY:
            self.kill()
            raise RuntimeError(f"a decoder process did not start "
                               f"({exit_reason(self.process.poll())})")
        self.ready = True

    def _recv(self) -> Any:
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            return None

    def request(self, path: str, with_reference: bool, settings: dict[str, Any] | None,
                timeout: float) -> Any:
        """Decode one file; return read_raw's value, raise RawReadError (the process is gone
        afterwards when it crashed or timed out)."""
        self.wait_ready()
        try:
            self.connection.send((path, with_reference, settings))
        except (BrokenPipeError, OSError):
            self.kill()
            raise RawReadError(path, f"decoder crashed ({exit_reason(self.process.poll())})"
                               ) from None
        if not self.connection.poll(timeout):
            self.kill()
            raise RawReadError(path, f"decoder timed out after {timeout:g} s")
        reply = self._recv()
        if reply is None:
            code = self._wait(5)
            self.kill()
            remove_shared_files(self.process.pid)
            raise RawReadError(path, f"decoder crashed ({exit_reason(code)})")
        status, value = reply
        if status == "error":
            raise value
        return _import_value(value)

    def _wait(self, seconds: float) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(seconds)
        return None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self.connection.closed

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self._wait(5)
        self.connection.close()
        remove_shared_files(self.process.pid)

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.connection.send(None)
        if self._wait(2) is None:
            self.kill()
        self.connection.close()


class DecoderPool:
    """Worker processes running `read_raw` (see the module docstring).

    Attributes:
      workers: processes (at most; started when first needed).
      timeout: seconds one file may take.
      restarts: workers replaced after a crash or a timeout.

    Args of the constructor: workers, timeout, and `start`: spawn the processes now (False:
    on first use).
    """

    def __init__(self, workers: int = 2, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 start: bool = True):
        if workers < 1:
            raise ValueError(f"decoder workers must be >= 1, got {workers}")
        if not timeout > 0:
            raise ValueError(f"the decode time limit must be > 0 seconds, got {timeout}")
        self.workers, self.timeout, self.restarts = workers, float(timeout), 0
        self._slots: queue.Queue = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(workers):  # started now: their imports overlap opening the model
            self._slots.put(self._start() if start else None)

    def load(self, path: str | os.PathLike, with_reference: bool = False,
             render_settings: dict[str, Any] | None = None
             ) -> RawRecord | tuple[RawRecord, np.ndarray]:
        """`raw.io.read_raw` in a worker process (same arguments and return value).

        Raises:
          RawReadError: what read_raw raises, or the decoder crashed or passed the time limit.
        """
        path = os.fspath(path)
        if self._closed:
            raise RuntimeError("the decoder pool is closed")
        worker = self._slots.get()
        try:
            if worker is None or not worker.alive:
                worker = self._start()
            try:
                return worker.request(path, with_reference, render_settings, self.timeout)
            finally:
                if not worker.alive:
                    self.restarts += 1
                    worker = None
        finally:
            self._slots.put(worker)

    def decode(self, path: str | os.PathLike) -> RawRecord:
        """The engine's decode step: `load(path)`."""
        return self.load(path)

    def _start(self) -> _Worker:
        worker = _Worker()
        with self._lock:
            self._all = [w for w in self._all if w.alive] + [worker]
        return worker

    def close(self) -> None:
        """Stop every worker process."""
        self._closed = True
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.stop()

    def __enter__(self) -> "DecoderPool":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
