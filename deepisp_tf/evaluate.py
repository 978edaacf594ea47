"""Evaluate a model against the reference render and two classic baselines, image by image.

For every RAW file: the reference render (the ground truth, DESIGN §2.1), the model's render
(tiled full-image inference, `runtime.pipeline.infer_record`), rawpy's own LINEAR demosaic with
the same pinned settings, and the classic OpenCV pipeline (`raw.classic.render`), scored with
`metrics` (DESIGN §2.3) and timed. A prepared Zurich RAW-to-RGB dataset is scored against its
Canon JPEGs with PyNET's protocol instead (no RAW files there, so no rawpy baseline). Outputs in
the report folder, written atomically and refreshed after every image:

    report.json         settings, model, input, one row per image (scores, seconds, error), means
    report.md           the same as Markdown tables
    grids/<name>.png    input preview | classic | ours | reference | error map

A file that cannot be evaluated becomes a row with an `error` and the run goes on. TensorFlow is
imported (lazily) only for a Keras workdir or a ZRR dataset: a `.tflite` on RAW files needs none.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import time
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from deepisp_tf import atomic, metrics
from deepisp_tf.config import REFERENCE_RENDER_DEFAULTS_NOTE, REFERENCE_RENDER_SETTINGS
from deepisp_tf.data.prepare import load_manifest
from deepisp_tf.raw.files import list_raw_files
from deepisp_tf.raw import cfa, classic, color
from deepisp_tf.raw.io import RawReadError, RawRecord, read_raw
from deepisp_tf.runtime import Runner, default_model_path
from deepisp_tf.runtime.profiling import warm_up
from deepisp_tf.runtime.pipeline import TileRunner, default_overlap, infer_record

log = logging.getLogger(__name__)

METHODS = {"ours": "ours", "rawpy_linear": "rawpy LINEAR", "classic": "classic"}
LINEAR_SETTINGS_NOTE = {**REFERENCE_RENDER_SETTINGS, "demosaic_algorithm": "LINEAR"}
CLASSIC_NOTE = ("deepisp_tf.raw.classic.render: OpenCV bilinear demosaic + the file's white "
                "balance + camera->sRGB matrix + BT.709 gamma, same geometry as the reference")
DEFAULT_TILE = 256
GRID_MAX_WIDTH = 1600    # pixels, whole grid
GRID_MAX_HEIGHT = 480    # pixels, one cell
GRID_GAP, GRID_HEADER = 4, 22
ERROR_GAIN = 10.0        # error map: mean |ours - reference| x 10 over channels, inferno colours
ZRR_CAMERA = "Huawei P20 (ZRR)"


@dataclasses.dataclass(frozen=True)
class EvalInput:
    """What to evaluate.

    Attributes:
      path: the --input folder.
      kind: "raw_dir" (a folder of RAW files), "dataset" (a prepared dataset's RAW files of one
        split) or "zrr" (a prepared Zurich RAW-to-RGB dataset's shards of one split).
      split: the split evaluated (None for a raw_dir).
      files: RAW files, or TFRecord shards for zrr.
      note: how the files were chosen, for the report.
    """

    path: str
    kind: str
    split: str | None
    files: list[str]
    note: str


@dataclasses.dataclass(frozen=True)
class Item:
    """One image to evaluate: `load()` -> (record, ground truth [H, W, 3] uint16)."""

    name: str
    path: str
    load: Callable[[], tuple[RawRecord, np.ndarray]]
    baselines: tuple[str, ...]
    read: Callable[..., Any] = read_raw  # read_raw or `isolation.DecoderPool.load`


class KerasRunner:
    """Run a tf_keras ISP model tile by tile, with the `TileRunner` protocol of `Runner`."""

    def __init__(self, model: Any, tile: int):
        from deepisp_tf.tf_env import tf  # pylint: disable=import-outside-toplevel
        self.model = model
        self.tile_shape = (tile, tile)
        self.has_metadata = any("metadata" in name for name in model.input_names)
        self._predict = tf.function(lambda inputs: model(inputs, training=False))

    def run(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        """Run one [tile, tile] model input tile (+ metadata [12]); return camera RGB [h, w, 3]."""
        height, width = self.tile_shape
        values = {"bayer": np.asarray(bayer_tile, np.float32).reshape(1, height, width, 1)}
        if self.has_metadata:
            if metadata is None:
                raise ValueError("this model needs the metadata [12] input")
            values["metadata"] = np.asarray(metadata, np.float32).reshape(1, -1)
        inputs = [values["metadata" if "metadata" in name else "bayer"]
                  for name in self.model.input_names]
        return np.asarray(self._predict(inputs))[0]


def open_keras(workdir: str, tile: int) -> tuple[KerasRunner, dict[str, Any]]:
    """Load a training workdir's model at a fixed `tile` (rebuilt with its weights if needed)."""
    # pylint: disable=import-outside-toplevel  # TensorFlow only for Keras workdirs
    from deepisp_tf.model import build_model, count_params, spatial_multiple
    from deepisp_tf.model.io import load_trained
    model, config = load_trained(workdir)
    multiple = spatial_multiple(config.model)
    if tile <= 0 or tile % multiple:
        raise ValueError(f"--tile={tile} must be a positive multiple of {multiple} for "
                         f"{workdir} ({config.model.encoder_stages} encoder stages)")
    if tuple(model.inputs[0].shape[1:3]) not in ((None, None), (tile, tile)):
        fixed = build_model(config.model, tile)
        try:
            fixed.set_weights(model.get_weights())
        except ValueError as error:
            raise ValueError(f"{workdir}: the saved model does not match its config.json "
                             f"model section ({error})") from None
        model = fixed
    info = {"kind": "keras_workdir", "path": os.path.abspath(workdir), "config": config.name,
            "params": count_params(model), "tile": tile}
    return KerasRunner(model, tile), info


def open_model(path: str | None, tile: int | None = None) -> tuple[TileRunner, dict[str, Any]]:
    """Open --model: a training workdir (Keras, float) or a `.tflite` (LiteRT), warmed up.

    Args:
      path: workdir or .tflite; None for the shipped default model.
      tile: tile side for a Keras model (default 256); a .tflite has its own.

    Returns:
      (runner, JSON-friendly description for the report).
    """
    path = default_model_path() if path is None else os.fspath(path)
    if path.endswith(".tflite"):
        runner: TileRunner = Runner(path)
        info = {"kind": "tflite", **runner.describe()}
        if tile is not None and (tile, tile) != runner.tile_shape:
            log.warning("%s has a fixed %s tile; --tile=%d ignored", path, runner.tile_shape, tile)
    elif os.path.isdir(path):
        runner, info = open_keras(path, DEFAULT_TILE if tile is None else tile)
    else:
        raise FileNotFoundError(f"{path}: --model must be a training workdir or a .tflite file")
    warm_up(runner, 1)
    return runner, info


def resolve_input(path: str) -> EvalInput:
    """Return what --input holds: a RAW folder, or a prepared dataset's test (else val) split."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: --input folder does not exist")
    manifest = load_manifest(path)
    if manifest is None:
        files = list_raw_files(path)
        return EvalInput(path, "raw_dir", None, files, f"all {len(files)} files of the folder")
    zrr = manifest.get("source") == "zrr"
    for split in ("test", "val"):
        entries = [e for e in manifest.get("files", [])
                   if e.get("split") == split and e.get("status") == "ok"]
        if entries:
            break
    else:
        raise ValueError(f"{path}: the prepared dataset has no test or val files to evaluate")
    files = [os.path.join(path, e["shard"]) if zrr else e["path"] for e in entries]
    note = f"prepared dataset ({manifest.get('source')}), {split} split, {len(files)} " \
           f"{'shards' if zrr else 'files'} with status ok"
    if split == "val":
        note += "; the test split is empty, so the val split is evaluated instead"
    return EvalInput(path, "zrr" if zrr else "dataset", split, files, note)


def _raw_items(files: list[str], read: Callable[..., Any] = read_raw) -> Iterator[Item]:
    for path in files:
        yield Item(os.path.basename(path), path,
                   lambda path=path: read(path, with_reference=True),
                   ("rawpy_linear", "classic"), read)


def _zrr_items(shards: list[str]) -> Iterator[Item]:
    """Yield the patches of ZRR shards: PyNET-normalized record + Canon JPEG target (x 257)."""
    # pylint: disable=import-outside-toplevel  # TensorFlow only for ZRR shards
    from deepisp_tf.data import tfrecord
    from deepisp_tf.tf_env import tf
    examples = tf.data.TFRecordDataset(shards).map(tfrecord.parse_example)
    for example in examples.as_numpy_iterator():
        mosaic, source = example["mosaic"], example["source"].decode()
        record = RawRecord(
            path=source, mosaic=mosaic, pattern="RGGB",
            black_levels=example["black_levels"].reshape(2, 2),
            white_level=float(example["white_level"]), wb_gains=example["wb_gains"],
            wb_source="none", cam_to_srgb=example["cam_to_srgb"].reshape(3, 3),
            pixel_aspect=1.0, render_size=tuple(mosaic.shape), camera=ZRR_CAMERA)
        yield Item(source, source, lambda r=record, t=example["target"]: (r, t), ("classic",))


def iter_items(eval_input: EvalInput, limit: int | None = None,
               read: Callable[..., Any] = read_raw) -> Iterator[Item]:
    """Yield the images of an input, at most `limit` (RAW files decoded with `read`)."""
    items = _zrr_items(eval_input.files) if eval_input.kind == "zrr" \
        else _raw_items(eval_input.files, read)
    for count, item in enumerate(items):
        if limit is not None and count >= limit:
            return
        yield item


def cell_size(render_size: tuple[int, int], cells: int = 5) -> tuple[int, int]:
    """Return (h, w) of one grid cell: the image scaled so `cells` fit in GRID_MAX_WIDTH."""
    height, width = render_size
    scale = min(1.0, (GRID_MAX_WIDTH - GRID_GAP * (cells - 1)) / cells / width,
                GRID_MAX_HEIGHT / height)
    return max(1, round(height * scale)), max(1, int(width * scale))


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-downscale an [H, W, 3] uint16 image to `size` (h, w) as uint8."""
    small = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.round(small.astype(np.float32) / 257).astype(np.uint8)


def packed_preview(rggb: np.ndarray) -> np.ndarray:
    """Show the model's input, a gamma-coded RGGB mosaic [H, W], as camera RGB [H/2, W/2, 3].

    One pixel per 2x2 CFA block: (R, mean of the two G, B), clipped to [0, 1].
    """
    planes = cfa.pack(rggb)
    rgb = np.stack([planes[..., 0], planes[..., 1:3].mean(-1), planes[..., 3]], -1)
    return np.clip(rgb, 0, 1)


def input_preview(record: RawRecord, size: tuple[int, int]) -> np.ndarray:
    """Return what the model sees, small: the white-balanced mosaic as camera RGB, gamma-coded.

    Samples one 2x2 CFA block per output pixel or so (no full-frame float copy), packs it to
    (R, mean G, B), gamma-compresses it and resizes it to `size` (the render geometry).
    """
    height, width = record.mosaic.shape
    step = max(2, int(min(height / size[0], width / size[1])) // 2 * 2)
    rows, cols = (np.stack([s, s + 1], 1).ravel() for s in (np.arange(0, height - 1, step),
                                                             np.arange(0, width - 1, step)))
    small = color.normalize(record.mosaic[np.ix_(rows, cols)], record.pattern,
                            record.black_levels, record.white_level, record.wb_gains)
    preview = packed_preview(color.gamma_compression(cfa.canonicalize(small, record.pattern)[0]))
    rgb = cv2.resize(preview.astype(np.float32), (size[1], size[0]),
                     interpolation=cv2.INTER_AREA)
    return np.round(rgb * 255).astype(np.uint8)


def error_map(reference: np.ndarray, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return the mean absolute error over channels x ERROR_GAIN, area-downscaled, as colours."""
    error = np.empty(reference.shape[:2], np.float32)
    for first in range(0, len(error), metrics.BAND_ROWS):
        rows = slice(first, first + metrics.BAND_ROWS)
        error[rows] = np.abs(reference[rows].astype(np.float32) - image[rows]).mean(-1) / 65535
    small = cv2.resize(error, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    coded = np.clip(small * ERROR_GAIN * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(coded, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def compose_grid(cells: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Place labelled [h, w, 3] uint8 cells side by side: [GRID_HEADER + h, W, 3] uint8 RGB."""
    height, width = cells[0][1].shape[:2]
    grid = np.zeros((GRID_HEADER + height, len(cells) * (width + GRID_GAP) - GRID_GAP, 3),
                    np.uint8)
    for index, (label, cell) in enumerate(cells):
        x = index * (width + GRID_GAP)
        grid[GRID_HEADER:, x:x + width] = cell
        cv2.putText(grid, label, (x + 3, GRID_HEADER - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return grid


def write_png(path: str, rgb: np.ndarray) -> str:
    """Write an [H, W, 3] uint8 RGB image as PNG, atomically."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    return atomic.write_bytes(path, encoded.tobytes())


def _render_baseline(method: str, item: Item, record: RawRecord) -> np.ndarray:
    if method == "rawpy_linear":
        import rawpy  # pylint: disable=import-outside-toplevel  # like raw.io: lazy
        return item.read(item.path, with_reference=True, render_settings={
            "demosaic_algorithm": rawpy.DemosaicAlgorithm.LINEAR})[1]
    return classic.render(record)


def _timed(render: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = render()
    return result, time.perf_counter() - start


def evaluate_item(item: Item, runner: TileRunner, overlap: int | None,
                  protocol: metrics.Protocol, grid_path: str) -> dict[str, Any]:
    """Render, score and time one image against its ground truth; write its grid.

    Returns:
      The report row: name, path, camera, pattern, sizes, scores {method: {psnr, ssim}},
      seconds {reference, method...} (ours excludes decoding: it starts from the record),
      ms_per_megapixel, grid.
    """
    (record, reference), load_seconds = _timed(item.load)
    size = cell_size(reference.shape[:2])
    megapixels = reference.shape[0] * reference.shape[1] / 1e6
    renders = {"ours": lambda: infer_record(record, runner, overlap),
               **{m: (lambda m=m: _render_baseline(m, item, record)) for m in item.baselines}}
    scores, seconds, cells = {}, {"reference": load_seconds}, {}
    for method, render in renders.items():
        image, seconds[method] = _timed(render)
        if image.shape != reference.shape:
            raise ValueError(f"{item.path}: {method} render is {image.shape}, reference "
                             f"{reference.shape}")
        scores[method] = dataclasses.asdict(metrics.score(reference, image, protocol))
        if method in ("ours", "classic"):
            cells[method] = downscale(image, size)
        if method == "ours":
            cells["error"] = error_map(reference, image, size)
        del image  # one full-size render alive at a time
    label = {m: f"{m} {scores[m]['psnr']:.2f} dB" for m in cells if m in scores}
    write_png(grid_path, compose_grid([
        ("input (WB mosaic)", input_preview(record, size)),
        *[(label[m], cells[m]) for m in ("classic",) if m in cells],
        (label["ours"], cells["ours"]), ("reference", downscale(reference, size)),
        (f"|ours - ref| x{ERROR_GAIN:g}", cells["error"])]))
    return {"name": item.name, "path": item.path, "camera": record.camera,
            "pattern": record.pattern, "raw_size": list(record.raw_size),
            "render_size": list(reference.shape[:2]), "megapixels": round(megapixels, 4),
            "scores": scores, "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "ms_per_megapixel": {k: round(1000 * v / megapixels, 2) for k, v in seconds.items()},
            "grid": os.path.join("grids", os.path.basename(grid_path)),
            "error": None}


def grid_name(index: int, name: str) -> str:
    """Return a unique, file-system-safe grid file name for the `index`-th image."""
    return f"{index:04d}_" + re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") + ".png"


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the set figures: per method, mean PSNR/SSIM over the images it scored."""
    means = {}
    for method in METHODS:
        scored = [metrics.ImageScore(**r["scores"][method]) for r in rows
                  if r["error"] is None and method in r["scores"]]
        if scored:
            means[method] = {**dataclasses.asdict(metrics.mean_score(scored)),
                             "images": len(scored)}
    return means


def _finite(value: Any) -> Any:
    """Replace non-finite floats (an identical image's inf PSNR) by strings, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _pair(score: dict[str, float] | None) -> str:
    return "n/a" if score is None else f"{score['psnr']:.2f} / {score['ssim']:.4f}"


def format_markdown(report: dict[str, Any]) -> str:
    """Return report.md: settings, the per-image table with the mean row, timings, failures."""
    model, inputs, rows = report["model"], report["input"], report["images"]
    methods = [m for m in METHODS if m in report["means"]] or list(METHODS)
    lines = ["# Evaluation report", "",
             f"- model: `{model.get('path') or model.get('model')}` ({model['kind']}, tile "
             f"{report['tile']}, overlap {report['overlap']})",
             f"- input: `{inputs['path']}`: {inputs['note']}",
             f"- ground truth: {report['ground_truth']}",
             f"- metrics: {report['protocol']['description']}",
             *[f"- {METHODS[m]}: {report['baselines'][m]}" for m in methods if m != "ours"],
             "", "| image | camera | size | " + " | ".join(
                 f"{METHODS[m]} PSNR / SSIM" for m in methods) + " |",
             "|---|---|---|" + "---:|" * len(methods)]
    for row in rows:
        if row["error"] is None:
            height, width = row["render_size"]
            lines.append(f"| {row['name']} | {row['camera']} | {width}x{height} | " + " | ".join(
                _pair(row["scores"].get(m)) for m in methods) + " |")
    count = sum(row["error"] is None for row in rows)
    lines.append(f"| **mean ({count} images)** | | | " + " | ".join(
        f"**{_pair(report['means'].get(m))}**" for m in methods) + " |")
    timed = ["reference", *methods]
    lines += ["", "Seconds per image (reference and rawpy LINEAR include decoding; ours and "
              "classic start from the decoded mosaic):", "",
              "| image | MP | " + " | ".join(METHODS.get(m, m) for m in timed) + " |",
              "|---|---:|" + "---:|" * len(timed)]
    lines += [f"| {r['name']} | {r['megapixels']:.2f} | " + " | ".join(
        f"{r['seconds'][m]:.3f}" if m in r["seconds"] else "n/a" for m in timed) + " |"
        for r in rows if r["error"] is None]
    failed = [row for row in rows if row["error"] is not None]
    if failed:
        lines += ["", f"Failed ({len(failed)}):", ""]
        lines += [f"- {row['name']}: {row['error']}" for row in failed]
    return "\n".join(lines) + "\n"


def write_report(output: str, report: dict[str, Any]) -> None:
    """Write report.json and report.md into `output`, atomically."""
    atomic.write_json(os.path.join(output, "report.json"), _finite(report))
    atomic.write_text(os.path.join(output, "report.md"), format_markdown(report))


def evaluate(model: str | None, input_path: str, output: str, *, tile: int | None = None,
             overlap: int | None = None, limit: int | None = None,
             read: Callable[..., Any] = read_raw) -> dict[str, Any]:
    """Evaluate a model on a folder of RAW files or a prepared dataset; write the report.

    Args:
      model: training workdir or .tflite (None: the shipped default model).
      input_path: RAW folder or prepared dataset folder (its test split, else val).
      output: report folder (created).
      tile: Keras tile side (default 256; 448 for ZRR, PyNET's whole patch).
      overlap: tile overlap (default tile / 8).
      limit: evaluate at most this many images.
      read: `read_raw` or a stand-in with its arguments (`isolation.DecoderPool.load`).

    Returns:
      The report (also in output/report.json).
    """
    eval_input = resolve_input(input_path)
    zrr = eval_input.kind == "zrr"
    runner, model_info = open_model(model, 448 if zrr and tile is None else tile)
    overlap = default_overlap(runner.tile_shape[0]) if overlap is None else overlap
    protocol = metrics.PYNET if zrr else metrics.DESIGN
    report = {
        "format_version": 1, "model": model_info, "tile": runner.tile_shape[0],
        "overlap": overlap,
        "input": dataclasses.asdict(eval_input), "protocol": dataclasses.asdict(protocol),
        "ground_truth": ("Canon 5D Mark IV JPEG of each ZRR patch (PyNET protocol)" if zrr else
                         f"rawpy reference render {REFERENCE_RENDER_SETTINGS}; "
                         f"{REFERENCE_RENDER_DEFAULTS_NOTE}"),
        "reference_render": {"settings": REFERENCE_RENDER_SETTINGS,
                             "note": REFERENCE_RENDER_DEFAULTS_NOTE},
        "baselines": {"classic": CLASSIC_NOTE, **({} if zrr else {"rawpy_linear": (
            f"rawpy postprocess {LINEAR_SETTINGS_NOTE}, other settings as the reference")})},
        "images": [], "means": {}, "complete": False}
    os.makedirs(os.path.join(output, "grids"), exist_ok=True)
    for index, item in enumerate(iter_items(eval_input, limit, read)):
        try:
            row = evaluate_item(item, runner, overlap, protocol,
                                os.path.join(output, "grids", grid_name(index, item.name)))
            log.info("%s: ours %s", item.name, _pair(row["scores"]["ours"]))
        except Exception as error:  # pylint: disable=broad-except  # reported, the run goes on
            reason = str(error) if isinstance(error, RawReadError) \
                else f"{type(error).__name__}: {error}"
            log.warning("%s failed: %s", item.name, reason)
            row = {"name": item.name, "path": item.path, "error": reason}
        report["images"].append(row)
        report["means"] = summarize(report["images"])
        write_report(output, report)
    report["complete"] = True
    write_report(output, report)
    return report
