"""Pick the shipped precision (float32, float16, int8 ...) that is fastest on this machine.

A model folder holds `tile_<precision>.tflite` files of one network and, in `config.json`
(key "precisions") or a `precisions.json` beside them, each precision's held-out quality:

    {"metric": "held-out PSNR dB", "reference": "float32", "max_drop_db": 1.0,
     "precisions": {"float32": {"psnr_db": 43.03}, "int8": {"psnr_db": 42.29}}}

`eligible` keeps the precisions that keep quality: no more than `max_drop_db` below the
reference (float32); without any listed quality every shipped file is a candidate. `choose`
times each candidate briefly on this host (a few hundred ms in all: `measure_ms_per_mp`),
keeps the fastest, and caches the choice in the user's cache folder (`cache_dir`), keyed by the
CPU (model and ISA flags), the interpreter threads and the files' SHA-256: a changed model file
or another machine measures again. A cache that cannot be read is ignored with a warning and
rewritten (atomically).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import os
import time
from typing import Any

import numpy as np

from deepisp_tf.constants import METADATA_SIZE, MODEL_CONFIG_FILE

from deepisp_tf import atomic
from deepisp_tf.runtime import cpu
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.profiling import warm_up

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "float16", "int8")
MODEL_PATTERN = "tile_*.tflite"
MANIFEST_FILE = "precisions.json"
CACHE_ENV = "DEEPISP_CACHE_DIR"
CACHE_FILE = "precision.json"
CACHE_VERSION = 1
DEFAULT_MAX_DROP_DB = 1.0
MEASURE_SECONDS = 0.08  # timed invokes per candidate after the warm-up (at least 3 runs)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The precision a run uses and why.

    Attributes:
      precision: e.g. "float32".
      path: its .tflite.
      source: "measured", "cache", "override" or "only" (a single eligible precision).
      ms_per_mp: measured model time per megapixel of each candidate (empty for an override).
      excluded: precisions left out for quality, with the reason.
    """

    precision: str
    path: str
    source: str
    ms_per_mp: dict[str, float] = dataclasses.field(default_factory=dict)
    excluded: dict[str, str] = dataclasses.field(default_factory=dict)


def shipped(model_dir: str) -> dict[str, str]:
    """Return {precision: path} of the `tile_<precision>.tflite` files of a folder, sorted."""
    paths = sorted(glob.glob(os.path.join(glob.escape(model_dir), MODEL_PATTERN)))
    return {os.path.basename(path)[len("tile_"):-len(".tflite")]: path for path in paths}


def load_quality(model_dir: str) -> dict[str, Any]:
    """Return the quality manifest of a folder ({} when none): `precisions.json`, else the
    "precisions" entry of `config.json` (ValueError naming the file if it is malformed)."""
    manifest = os.path.join(model_dir, MANIFEST_FILE)
    config = os.path.join(model_dir, MODEL_CONFIG_FILE)
    for path, key in ((manifest, None), (config, "precisions")):
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        section = data if key is None else data.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("precisions"), dict):
            raise ValueError(f"{path}: expected {{'precisions': {{name: {{'psnr_db': x}}}}}}")
        return section
    return {}


def eligible(available: dict[str, str], quality: dict[str, Any]
             ) -> tuple[list[str], dict[str, str]]:
    """Return (precisions that keep quality, {excluded precision: reason}).

    Args:
      available: {precision: path} (`shipped`).
      quality: the manifest (`load_quality`); {} keeps every precision.
    """
    if not quality:
        return sorted(available), {}
    scores = {name: entry.get("psnr_db") for name, entry in quality["precisions"].items()}
    reference = quality.get("reference", "float32")
    margin = float(quality.get("max_drop_db", DEFAULT_MAX_DROP_DB))
    best = scores.get(reference)
    keep, excluded = [], {}
    for name in sorted(available):
        score = scores.get(name)
        if score is None:
            excluded[name] = "no quality listed"
        elif best is not None and score < best - margin:
            excluded[name] = f"{best - score:.2f} dB below {reference} (margin {margin} dB)"
        else:
            keep.append(name)
    return keep, excluded


def cache_dir() -> str:
    """Return the cache folder: $DEEPISP_CACHE_DIR, else $XDG_CACHE_HOME/deepisp_tf, else
    ~/.cache/deepisp_tf."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "deepisp_tf")


def file_sha256(path: str) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(candidates: dict[str, str], threads: int | None, tile: int | None) -> str:
    """Return the key of a choice: CPU model + ISA flags, threads, tile, and every candidate
    file's hash (so a changed model file, or another machine, is measured again)."""
    host = cpu.cpu_info()
    parts = {"cpu": host["model"], "flags": host["isa_flags"], "threads": threads, "tile": tile,
             "models": {name: file_sha256(path) for name, path in sorted(candidates.items())}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def read_cache(path: str) -> dict[str, Any]:
    """Return the cache's entries ({} when missing; a corrupted file is ignored, warned of)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION \
                or not isinstance(data.get("entries"), dict):
            raise ValueError("not a precision cache of this version")
        return data["entries"]
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        log.warning("%s: ignoring the precision cache (%s); measuring again", path, error)
        return {}


def measure_ms_per_mp(path: str, threads: int | None, tile: int | None,
                      seconds: float = MEASURE_SECONDS) -> float:
    """Return the median model time per megapixel of one .tflite on this host (one warm-up
    invoke, then at least 3 and about `seconds` of timed invokes of a random tile)."""
    runner = Runner(path, threads=threads, tile=tile)
    height, width = runner.tile_shape
    rng = np.random.default_rng(0)
    bayer = runner.input_quantization.quantize(rng.uniform(0, 1, (height, width)))
    metadata = np.zeros(METADATA_SIZE, np.float32) if runner.has_metadata else None
    warm_up(runner, 1)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - started < seconds:
        start = time.perf_counter()
        runner.invoke(bayer, metadata)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3 / (height * width / 1e6)


def choose(model_dir: str, precision: str = "auto", *, threads: int | None = None,
           tile: int | None = None, use_cache: bool = True) -> Choice:
    """Return the precision to run from a model folder.

    Args:
      model_dir: folder of `tile_<precision>.tflite` files (+ config.json / precisions.json).
      precision: "auto" (fastest eligible, measured or cached) or a shipped precision.
      threads: interpreter threads the run will use (the measurement uses as many).
      tile: tile side the run will use (None: the model's own).
      use_cache: read and write the cache (False: always measure, nothing written).

    Raises:
      ValueError: no shipped file, or an unknown / missing precision (the folder named).
    """
    available = shipped(model_dir)
    if not available:
        raise ValueError(f"{model_dir}: no {MODEL_PATTERN} model files")
    if precision != "auto":
        if precision not in available:
            raise ValueError(f"{model_dir}: no {precision} model (shipped: "
                             f"{', '.join(available)})")
        return Choice(precision, available[precision], "override")
    keep, excluded = eligible(available, load_quality(model_dir))
    if not keep:
        raise ValueError(f"{model_dir}: no precision keeps quality ({excluded})")
    candidates = {name: available[name] for name in keep}
    if len(candidates) == 1:
        name = keep[0]
        return Choice(name, candidates[name], "only", excluded=excluded)
    cache_path = os.path.join(cache_dir(), CACHE_FILE)
    key = cache_key(candidates, threads, tile)
    entries = read_cache(cache_path) if use_cache else {}
    cached = entries.get(key)
    if isinstance(cached, dict) and cached.get("precision") in candidates:
        return Choice(cached["precision"], candidates[cached["precision"]], "cache",
                      dict(cached.get("ms_per_mp", {})), excluded)
    timings = {name: measure_ms_per_mp(path, threads, tile) for name, path in candidates.items()}
    best = min(timings, key=timings.get)
    if use_cache:
        entries[key] = {"precision": best, "ms_per_mp": timings, "model_dir": model_dir,
                        "cpu": cpu.cpu_info()["model"], "threads": threads, "tile": tile,
                        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            atomic.write_json(cache_path, {"version": CACHE_VERSION, "entries": entries})
        except OSError as error:
            log.warning("%s: cannot write the precision cache (%s)", cache_path, error)
    return Choice(best, candidates[best], "measured", timings, excluded)
