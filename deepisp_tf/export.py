"""TFLite conversion of one trained model into deployable variants, and the report proving each.

Conversion is a library call returning bytes (`convert_model`); `export_model` converts every
requested variant at every fixed input shape, writes one `.tflite` per (variant, shape)
atomically, runs each file through LiteRT and writes `report.json` / `report.md`:

    variant             source model             conversion
    float32             trained float            float32
    float16             trained float            float16 weights (dequantized at load)
    dynamic             trained float            dynamic-range: int8 weights, float activations
    int8                trained float            full-integer PTQ, calibrated on the training
                                                 pipeline (`ExportConfig.int8_io` sets the IO)
    int8_per_tensor     trained float            as int8, one weight scale per tensor instead of
                                                 per output channel (a smaller file)
    qat_int8            tfmot QAT fine-tune      full-integer from the fake-quant ranges
    pruned              pruning fine-tune, strip float32 (zeros stored densely: gzip shrinks it)
    pruned_int8         pruning fine-tune, strip full-integer PTQ (zeros stay exactly zero)
    pruned_int8_per_tensor  as pruned_int8 with one weight scale per tensor (smallest gzip)
    pruned_int8_sparse  pruning fine-tune, strip as pruned_int8 + EXPERIMENTAL_SPARSITY encoding

The sparse encoding is kept for comparison: on unstructured 50% sparsity its index arrays make
the file larger than dense int8, and DENSIFY / the sparse FULLY_CONNECTED kernel stay off
XNNPACK; dense int8 zeros compress under gzip instead.

A variant that fails (no data for calibration, an unsupported layer, a converter error) is
reported with its error and the others still convert. Every model has batch 1, a fixed
(H, W) and the signature `serving_default`: `bayer` [1, H, W, 1] (+ `metadata` [1, 12]) ->
`rgb` [1, H, W, 3] (gamma camera RGB; `color.camera_to_srgb` finishes it). With
`ExportConfig.packed_io` the float and pruned variants are converted from the packed-IO network
(`unet.packed_io_model`: `bayer` [1, H/2, W/2, 4] -> `rgb` [1, H/2, W/2, 12], files
`<variant>_packed_<H>x<W>.tflite`), which `Runner` packs and unpacks, so the report measures
them at the full-resolution tile like the others; QAT models cannot be repacked and fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import logging
import os
from typing import Any, Callable, Iterable

import numpy as np

from deepisp_tf import atomic, metrics
from deepisp_tf.config import ExperimentConfig, ExportConfig, ModelConfig, OptimizeConfig
from deepisp_tf.data.pipeline import make_dataset, representative_dataset, shard_files
from deepisp_tf.model.layers import quantize_scope
from deepisp_tf.raw import cfa, color
from deepisp_tf.model.unet import (INPUT_BAYER, INPUT_METADATA, OUTPUT_RGB, packed_io_model,
                                   spatial_multiple)
from deepisp_tf.runtime import inspection, profiling
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.tf_env import keras, tf

log = logging.getLogger(__name__)

# variant -> (source model, conversion mode)
VARIANTS: dict[str, tuple[str, str]] = {
    "float32": ("float", "float32"), "float16": ("float", "float16"),
    "dynamic": ("float", "dynamic"), "int8": ("float", "int8"),
    "int8_per_tensor": ("float", "int8_per_tensor"), "qat_int8": ("qat", "qat"),
    "pruned": ("pruned", "float32"), "pruned_int8": ("pruned", "int8"),
    "pruned_int8_per_tensor": ("pruned", "int8_per_tensor"),
    "pruned_int8_sparse": ("pruned", "int8_sparse"),
}
# Parity: minimum PSNR (dB) of the LiteRT output against the Keras model the variant was
# converted from (outputs in [0, 1]). float32 only reorders float arithmetic (~1e-6 errors,
# > 90 dB); float16 rounds weights to 11 significant bits (~1e-3 relative, > 50 dB); dynamic
# and int8 round weights and activations to 8 bits: one output step alone is 1/255 (58.9 dB),
# and errors add up over ~20 layers, so 30 dB (3% RMS) separates "same function, quantized"
# from a broken conversion (an unrelated image scores ~10-15 dB). QAT's fake-quant model
# already rounds like the interpreter, but min/max ranges and rounding order still differ.
# The sparse encoding runs FULLY_CONNECTED on LiteRT's sparse int8 kernel, whose rounding
# differs from the dense one (measured 29.6-50 dB on the tests' tiny model): 25 dB.
PARITY_MIN_PSNR_DB = {"float32": 70.0, "float16": 45.0, "dynamic": 30.0, "int8": 30.0,
                      "int8_per_tensor": 30.0, "qat": 30.0, "int8_sparse": 25.0}
# Integer modes, and the one that quantizes each weight tensor with a single scale instead of one
# per output channel: per-channel parameters (a float32 scale, an int64 zero point and an int32
# bias per channel) are a third of a small int8 model's file.
INTEGER_MODES = ("int8", "int8_per_tensor", "int8_sparse", "qat")
# Ops the NNAPI delegate accepts, with the Android API level each needs (float32 / quantized
# uint8 graphs); signed int8 graphs need NNAPI 1.3, API 30. A static check from the TFLite
# NNAPI delegate's op table, not a run on a device (android_bench does that).
NNAPI_OPS = {
    "ADD": 27, "AVERAGE_POOL_2D": 27, "CONCATENATION": 27, "CONV_2D": 27, "DEPTH_TO_SPACE": 27,
    "DEPTHWISE_CONV_2D": 27, "DEQUANTIZE": 27, "FULLY_CONNECTED": 27, "LOGISTIC": 27,
    "MAX_POOL_2D": 27, "MUL": 27, "RELU": 27, "RELU_N1_TO_1": 27, "RELU6": 27, "RESHAPE": 27,
    "RESIZE_BILINEAR": 27, "SOFTMAX": 27, "SPACE_TO_DEPTH": 27, "TANH": 27, "MEAN": 28,
    "PAD": 28, "STRIDED_SLICE": 28, "SUB": 28, "TRANSPOSE": 28, "HARD_SWISH": 29,
    "MAXIMUM": 29, "MINIMUM": 29, "QUANTIZE": 29, "RESIZE_NEAREST_NEIGHBOR": 29,
    "TRANSPOSE_CONV": 29,
}
NNAPI_INT8_API = 30
RECOMMEND_MAX_PSNR_DROP_DB = 0.3
WARMUP_RUNS = 2
MIN_LARGE_SAMPLES = 8      # calibration samples of a shape larger than 256x256


class ExportError(RuntimeError):
    """One variant could not be produced; the message names the variant and the reason."""

    def __init__(self, variant: str, reason: str):
        self.variant = variant
        super().__init__(f"{variant}: {reason}")


# ----------------------------------------------------------------------------- conversion


def fixed_shape_model(model: keras.Model, height: int, width: int) -> keras.Model:
    """Rebuild `model` (float, pruned or QAT) with batch 1 and a fixed H x W; copy the weights.

    Args:
      model: a Functional model of the contract, at any or dynamic spatial size.
      height: H of the `bayer` input (and of the `rgb` output).
      width: W.

    Returns:
      A model with inputs [1, height, width, 1] (+ [1, 12]) computing the same function.
    """
    inputs = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape[1:])
        if len(shape) == 3:
            shape = (height, width, shape[2])
        inputs.append(keras.Input(shape, batch_size=1, name=tensor.name.split(":")[0]))
    with quantize_scope():
        fixed = keras.models.clone_model(model, input_tensors=inputs)
    fixed.set_weights(model.get_weights())
    return fixed


def packed_fixed_model(model: keras.Model, config: ModelConfig, height: int,
                       width: int) -> keras.Model:
    """Return the batch-1 packed-IO variant of a float or pruned model for an H x W tile.

    Inputs [1, H/2, W/2, 4] (+ [1, 12]), output [1, H/2, W/2, 12] (`unet.packed_io_model`).

    Raises:
      ValueError: the model's layers cannot be copied by name (a tfmot QAT model).
    """
    return fixed_shape_model(packed_io_model(model, config, (height, width)),
                             height // 2, width // 2)


def pack_samples(samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Return calibration samples with each bayer [1, H, W, 1] packed to [1, H/2, W/2, 4]."""
    return [[cfa.pack(sample[0][0, ..., 0])[None], *sample[1:]] for sample in samples]


def tflite_name(variant: str, height: int, width: int, packed_io: bool = False) -> str:
    """Return the file name of a variant: <variant>[_packed]_<H>x<W>.tflite."""
    return f"{variant}{'_packed' if packed_io else ''}_{height}x{width}.tflite"


def _serving_function(model: keras.Model) -> Any:
    """Return the concrete function `bayer` (+ `metadata`) -> {`rgb`} of a batch-1 model."""
    specs = [tf.TensorSpec(t.shape, tf.float32, name=t.name.split(":")[0]) for t in model.inputs]
    names = [spec.name for spec in specs]
    if names[0] != INPUT_BAYER or names[1:] not in ([], [INPUT_METADATA]):
        raise ValueError(f"model inputs must be ({INPUT_BAYER}[, {INPUT_METADATA}]), got {names}")

    @tf.function(input_signature=specs)
    def serve(*tensors):
        return {OUTPUT_RGB: model(list(tensors) if len(tensors) > 1 else tensors[0],
                                   training=False)}

    return serve.get_concrete_function()


def convert_model(model: keras.Model, mode: str,
                  representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
                  io_type: str = "float") -> bytes:
    """Convert a batch-1, fixed-shape model to a TFLite flatbuffer.

    Args:
      model: from `fixed_shape_model` (a float model, or a tfmot QAT model for "qat").
      mode: "float32", "float16", "dynamic", "int8", "int8_per_tensor" (one weight scale per
        tensor), "int8_sparse" (int8 with the EXPERIMENTAL_SPARSITY encoding) or "qat".
      representative: calibration samples [bayer (+ metadata)] for the integer modes (QAT
        takes its ranges from the fake-quant layers; the converter still asks for samples).
      io_type: "float", "int8" or "uint8" inputs/outputs for the integer modes.

    Returns:
      The .tflite bytes, signature `serving_default` (bayer[, metadata] -> rgb).
    """
    if mode not in PARITY_MIN_PSNR_DB:
        raise ValueError(f"unknown conversion mode {mode!r}; one of {sorted(PARITY_MIN_PSNR_DB)}")
    # The converter saves `trackable` as a SavedModel first; handing it the Keras model would
    # trace every layer's call for serialization (~5x slower), so a module holds the weights.
    trackable = tf.Module()
    trackable.weights = list(model.weights)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [_serving_function(model)], trackable)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode in INTEGER_MODES:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # A private converter flag (TF 2.21): the only switch for per-tensor weight scales.
        converter._experimental_disable_per_channel = mode == "int8_per_tensor"  # pylint: disable=protected-access
        if mode == "int8_sparse":
            converter.optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
        if representative is None:
            raise ValueError(f"mode {mode} needs a representative data set")
        converter.representative_dataset = representative  # QAT: only for unannotated tensors
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type != "float":
            converter.inference_input_type = getattr(tf, io_type)
            converter.inference_output_type = getattr(tf, io_type)
    with quantize_scope():
        return converter.convert()


# ----------------------------------------------------------------------------- data


def tile_to_shape(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Repeat an [h, w, C] image (h, w even: the CFA phase is kept) to [height, width, C]."""
    reps = (-(-height // image.shape[0]), -(-width // image.shape[1]), 1)
    return np.tile(image, reps)[:height, :width]


def _crop_config(experiment: ExperimentConfig, size: int):
    """The experiment's DataConfig with centre crops of `size` (clipped to the stored tiles)."""
    crop = min(size, (experiment.data.tile_size - 2) // 2 * 2)
    return dataclasses.replace(experiment.data, crop_size=crop)


def require_records(data_dir: str, split: str) -> None:
    """Raise ValueError unless a split of a prepared dataset holds at least one tile.

    Checked before any repeating pipeline is built on the split: repeating a split with no
    records would spin forever instead of ending.
    """
    records = tf.data.TFRecordDataset(shard_files(data_dir, split)).take(1)
    if not any(True for _ in records):
        raise ValueError(f"empty representative set: the {split} split of {data_dir} has no "
                         "tiles")


def representative_samples(data_dir: str, experiment: ExperimentConfig, count: int,
                           shape: tuple[int, int], with_metadata: bool) -> list[list[np.ndarray]]:
    """Return `count` calibration samples [bayer [1, H, W, 1] (+ metadata [1, 12])].

    Centre crops of training tiles from the training pipeline (`representative_dataset`),
    repeated to fill H x W when the model is larger than a stored tile (Full HD). Larger
    shapes take proportionally fewer samples (at least 8): the same pixel count, less memory.

    Raises:
      ValueError: the training split yields no tile.
    """
    height, width = shape
    require_records(data_dir, "train")
    count = min(count, max(MIN_LARGE_SAMPLES, count * 256 * 256 // (height * width)))
    data = _crop_config(experiment, max(shape))
    samples = []
    for tensors in representative_dataset(data_dir, data, count, "train", with_metadata):
        arrays = [np.asarray(t, np.float32) for t in tensors]
        arrays[0] = tile_to_shape(arrays[0][0], height, width)[None]
        samples.append(arrays)
    if not samples:
        raise ValueError(f"empty representative set: the train split of {data_dir} has no tiles")
    return samples


def validation_tiles(data_dir: str, experiment: ExperimentConfig, count: int, size: int
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return up to `count` (bayer [S, S], metadata [12], target [S, S, 3]) val tiles.

    The metadata is the model's optional input and, always, the colour matrix `quality` needs.
    """
    data = _crop_config(experiment, size)
    if data.crop_size != size:
        raise ValueError(f"validation tiles are {experiment.data.tile_size} px: a {size}x{size} "
                         f"model cannot be scored on them (pass a smaller --input_shape first)")
    dataset = make_dataset(data_dir, "val", data, 1, training=False, repeat=False)
    tiles = []
    for inputs, target in dataset.take(count):
        tiles.append((inputs["bayer"].numpy()[0, ..., 0], inputs["metadata"].numpy()[0],
                      target.numpy()[0]))
    if not tiles:
        raise ValueError(f"the val split of {data_dir} has no tiles")
    return tiles


# ----------------------------------------------------------------------------- checks


def keras_outputs(model: keras.Model, tiles: list) -> list[np.ndarray]:
    """Run a Keras model (any variant source) on validation tiles; return [S, S, 3] each."""
    size = tiles[0][0].shape
    fixed = fixed_shape_model(model, *size)
    outputs = []
    for bayer, metadata, _ in tiles:
        inputs = [bayer[None, ..., None]] + ([metadata[None]] if len(model.inputs) > 1 else [])
        outputs.append(np.asarray(fixed(inputs if len(inputs) > 1 else inputs[0],
                                        training=False))[0])
    return outputs


def quality(outputs: list[np.ndarray], tiles: list) -> dict[str, float]:
    """Return the mean PSNR/SSIM (DESIGN §2.3) of camera-RGB outputs, mapped to sRGB with each
    tile's matrix (`color.camera_to_srgb`), against the tiles' targets."""
    score = metrics.mean_score(
        metrics.score(target, color.camera_to_srgb(output, metadata[:9].reshape(3, 3)))
        for output, (_, metadata, target) in zip(outputs, tiles))
    return {"psnr": score.psnr, "ssim": score.ssim}


def parity(outputs: list[np.ndarray], references: list[np.ndarray]) -> dict[str, float]:
    """Return PSNR (whole tile, no crop) and max |difference| of outputs against references."""
    reference, output = np.concatenate(references), np.concatenate(outputs)  # tiles stacked in H
    return {"parity_psnr_db": metrics.psnr(reference, output, border=0),
            "max_abs_diff": float(np.max(np.abs(output.astype(np.float64) - reference)))}


def delegation(runner: Runner) -> dict[str, Any]:
    """Return the op counts and whether XNNPACK (LiteRT's default CPU path) runs every op."""
    ops = runner.ops()
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.name] = counts.get(op.name, 0) + 1
    undelegated = sorted({op.name for op in ops if not op.delegated})
    return {"ops": dict(sorted(counts.items())), "op_count": len(ops),
            "xnnpack_all_delegated": not undelegated, "not_delegated_ops": undelegated}


def gpu_compatibility(tflite: bytes) -> dict[str, Any]:
    """Run `tf.lite.experimental.Analyzer` with gpu_compatibility=True; return its verdict.

    Returns:
      {"compatible": bool, "warnings": the analyzer's GPU COMPATIBILITY WARNING lines,
       "analyzer_summary": its closing verdict line}.
    """
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=tflite, gpu_compatibility=True)
    lines = text.getvalue().splitlines()
    warnings = [line.strip() for line in lines if "GPU COMPATIBILITY WARNING" in line]
    verdict = [line.strip() for line in lines if "compatible with GPU delegate" in line]
    return {"compatible": not warnings and any("looks compatible" in v for v in verdict),
            "warnings": warnings, "analyzer_summary": verdict[0] if verdict else ""}


def nnapi_check(ops: Iterable[str], integer: bool) -> dict[str, Any]:
    """Check the op list against `NNAPI_OPS`; return support and the minimum Android API."""
    ops = sorted(set(ops))
    unsupported = [op for op in ops if op not in NNAPI_OPS]
    levels = [NNAPI_OPS[op] for op in ops if op in NNAPI_OPS] + ([NNAPI_INT8_API] if integer
                                                                   else [])
    return {"supported": not unsupported, "unsupported_ops": unsupported,
            "min_android_api": max(levels) if levels and not unsupported else None,
            "check": "static op table (deepisp_tf.export.NNAPI_OPS), not a device run"}


def tflite_weight_sparsity(path: str) -> float:
    """Return the fraction of zero weights over the conv / dense kernels of a .tflite."""
    return inspection.weight_sparsity(path)


def latency_ms(runner: Runner, runs: int, seed: int = 0) -> float:
    """Return the median wall time (ms) of one invoke on random inputs, after warm-up runs."""
    return profiling.latency_ms(runner, runs, seed, WARMUP_RUNS)


# ----------------------------------------------------------------------------- export


def measure(path: str, tflite: bytes, mode: str, config: ExportConfig,
            tiles: list | None, reference: list[np.ndarray] | None,
            keras_float: dict[str, float] | None) -> dict[str, Any]:
    """Run one written .tflite through LiteRT and return its report entry fields."""
    runner = Runner(path, threads=config.threads)
    height, width = runner.tile_shape
    integer = mode in INTEGER_MODES
    entry: dict[str, Any] = {
        "size_bytes": os.path.getsize(path), "gzip_bytes": len(gzip.compress(tflite, 9)),
        "weight_sparsity": tflite_weight_sparsity(path),
        "io_dtypes": {name: str(dtype) for name, dtype in runner.io_dtypes.items()},
        **delegation(runner), "gpu": gpu_compatibility(tflite)}
    entry["nnapi"] = nnapi_check(entry["ops"], integer)
    runs = max(3, round(config.latency_runs * 256 * 256 / (height * width)))
    entry["latency_ms"] = latency_ms(runner, runs)
    entry["latency_ms_per_megapixel"] = entry["latency_ms"] / (height * width / 1e6)
    if tiles is not None and reference is not None:
        outputs = [runner.run(bayer, metadata if runner.has_metadata else None)
                   for bayer, metadata, _ in tiles]
        entry.update(quality(outputs, tiles))
        entry.update(parity(outputs, reference))
        entry["parity_min_psnr_db"] = PARITY_MIN_PSNR_DB[mode]
        entry["parity_ok"] = entry["parity_psnr_db"] >= PARITY_MIN_PSNR_DB[mode]
        if keras_float is not None:
            entry["psnr_drop_db"] = keras_float["psnr"] - entry["psnr"]
            entry["ssim_drop"] = keras_float["ssim"] - entry["ssim"]
    return entry


def build_sources(model: keras.Model, needed: set[str], data_dir: str | None,
                  experiment: ExperimentConfig, config: OptimizeConfig
                  ) -> tuple[dict[str, keras.Model], dict[str, str]]:
    """Return the source models ("float", and "pruned"/"qat" when needed) and their errors."""
    from deepisp_tf import optimize  # pylint: disable=import-outside-toplevel

    sources, errors = {"float": model}, {}
    builders = {"pruned": optimize.prune, "qat": optimize.quantization_aware_train}
    for name in sorted(needed & set(builders)):
        if data_dir is None:
            errors[name] = "no training data to fine-tune on (pass --data or W/run.json 'data')"
            continue
        try:
            log.info("building the %s model (fine-tune on %s)", name, data_dir)
            require_records(data_dir, "train")
            dataset = optimize.train_dataset(data_dir, experiment.data, config)
            sources[name] = builders[name](model, dataset, config)
        except Exception as error:  # pylint: disable=broad-except  (reported per variant)
            log.exception("%s fine-tune failed", name)
            errors[name] = f"{type(error).__name__}: {error}"
    return sources, errors


def _error_text(error: Exception, limit: int = 2000) -> str:
    """One-paragraph error text for the report (converter errors can be pages long)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def export_variant(variant: str, shape: tuple[int, int], output_dir: str,
                   sources: dict[str, keras.Model], source_errors: dict[str, str],
                   calibration: Callable[[tuple[int, int]], list], config: ExportConfig,
                   evaluation: dict[str, Any], model_config: ModelConfig | None = None
                   ) -> dict[str, Any]:
    """Convert, write and measure one (variant, shape); failures become the entry's `error`.

    With `config.packed_io` the packed-IO model of the source is converted (`model_config`
    builds it); the report measures it through `Runner.run` at full resolution all the same.
    """
    height, width = shape
    source, mode = VARIANTS[variant]
    entry: dict[str, Any] = {"variant": variant, "shape": [height, width], "mode": mode,
                             "source": source, "packed_io": config.packed_io, "file": None,
                             "error": None}
    try:
        if source in source_errors:
            raise ExportError(variant, f"{source} model unavailable: {source_errors[source]}")
        representative = None
        if mode in INTEGER_MODES:
            try:
                samples = calibration(shape)
            except (ValueError, tf.errors.OpError) as error:
                raise ExportError(variant, _error_text(error)) from None
            if config.packed_io:
                samples = pack_samples(samples)
            representative = lambda: iter(samples)  # noqa: E731
        log.info("converting %s at %dx%d", variant, height, width)
        if config.packed_io:
            if model_config is None:
                raise ExportError(variant, "packed IO needs the model configuration")
            fixed = packed_fixed_model(sources[source], model_config, height, width)
        else:
            fixed = fixed_shape_model(sources[source], height, width)
        tflite = convert_model(fixed, mode, representative, config.int8_io)
        path = atomic.write_bytes(
            os.path.join(output_dir, tflite_name(variant, height, width, config.packed_io)),
            tflite)
        entry["file"] = os.path.basename(path)
        evaluated = evaluation.get("shape") == [height, width]
        entry.update(measure(path, tflite, mode, config,
                             evaluation.get("tiles") if evaluated else None,
                             evaluation.get("references", {}).get(source) if evaluated else None,
                             evaluation.get("keras_float")))
    except Exception as error:  # pylint: disable=broad-except  (the other variants go on)
        message = str(error) if isinstance(error, ExportError) else (
            f"{variant} {height}x{width}: {type(error).__name__}: {_error_text(error)}")
        log.error("variant failed: %s", message)
        entry["error"] = message
    return entry


def _evaluation(sources: dict[str, keras.Model], data_dir: str | None,
                experiment: ExperimentConfig, config: ExportConfig) -> dict[str, Any]:
    """Validation tiles at the first shape, each source's Keras outputs and the float score."""
    height, width = config.input_shapes[0]
    result: dict[str, Any] = {"split": "val", "protocol": metrics.DESIGN.description,
                              "shape": [height, width]}
    try:
        if data_dir is None:
            raise ValueError("no data folder (pass --data or W/run.json 'data')")
        if height != width:
            raise ValueError(f"validation tiles are square; the first shape is {height}x{width}")
        tiles = validation_tiles(data_dir, experiment, config.eval_tiles, height)
    except (ValueError, tf.errors.OpError) as error:
        result["error"] = f"not scored: {_error_text(error)}"
        return result
    result["tiles"] = tiles
    result["references"] = {name: keras_outputs(model, tiles) for name, model in sources.items()}
    result["keras"] = {name: quality(outputs, tiles)
                       for name, outputs in result["references"].items()}
    result["keras_float"] = result["keras"]["float"]
    return result


def add_reductions(entries: list[dict[str, Any]]) -> None:
    """Add size reductions (%) against the float32 entry of the same shape, in place."""
    float32 = {tuple(e["shape"]): e for e in entries
               if e["variant"] == "float32" and e.get("size_bytes")}
    for entry in entries:
        base = float32.get(tuple(entry["shape"]))
        if base is None or not entry.get("size_bytes"):
            continue
        entry["reduction_vs_float32_pct"] = 100 * (1 - entry["size_bytes"] / base["size_bytes"])
        entry["gzip_reduction_vs_float32_pct"] = 100 * (1 - entry["gzip_bytes"]
                                                        / base["size_bytes"])
        entry["gzip_reduction_vs_float32_gzip_pct"] = 100 * (1 - entry["gzip_bytes"]
                                                             / base["gzip_bytes"])


def recommend(entries: list[dict[str, Any]], shape: list[int]) -> dict[str, Any]:
    """Pick the variant to ship at `shape`: fastest of those that keep quality, then smallest.

    Quality kept: PSNR within `RECOMMEND_MAX_PSNR_DROP_DB` of the Keras float model and parity
    within tolerance (when the validation split was scored; otherwise every converted variant).
    Variants within 5% of the fastest latency count as equally fast; the smaller file wins.
    """
    done = [e for e in entries if e["shape"] == shape and not e["error"]]
    scored = [e for e in done if "psnr_drop_db" in e]
    eligible = ([e for e in scored if e["psnr_drop_db"] <= RECOMMEND_MAX_PSNR_DROP_DB
                 and e["parity_ok"]] if scored else done)
    if not eligible:
        return {"variant": None, "reason": "no variant converted and kept quality at "
                f"{shape[0]}x{shape[1]}"}
    fastest = min(e["latency_ms"] for e in eligible)
    best = min((e for e in eligible if e["latency_ms"] <= 1.05 * fastest),
               key=lambda e: e["size_bytes"])
    why = [f"{best['latency_ms']:.2f} ms per {shape[0]}x{shape[1]} tile with LiteRT on the CPU "
           f"(fastest of the {len(eligible)} variants that keep quality)",
           f"{best['size_bytes'] / 1e3:.0f} kB"]
    if "reduction_vs_float32_pct" in best:
        why[-1] += f" ({best['reduction_vs_float32_pct']:.0f}% smaller than float32)"
    if "psnr_drop_db" in best:
        why.append(f"PSNR {best['psnr']:.2f} dB, {best['psnr_drop_db']:+.2f} dB drop against "
                   "the Keras float model")
    else:
        why.append("quality not scored (no validation tiles at this shape)")
    why.append("every op on XNNPACK" if best["xnnpack_all_delegated"] else
               f"ops left on LiteRT's builtin kernels: {', '.join(best['not_delegated_ops'])}")
    return {"variant": best["variant"], "file": best["file"], "shape": shape,
            "reason": "; ".join(why)}


def export_model(model: keras.Model, experiment: ExperimentConfig, output_dir: str,
                 config: ExportConfig = ExportConfig(),
                 optimize_config: OptimizeConfig = OptimizeConfig(),
                 data_dir: str | None = None, source: str = "") -> dict[str, Any]:
    """Convert every requested variant at every shape, measure each, write the report.

    Args:
      model: the trained float model.
      experiment: its ExperimentConfig (data settings for calibration and evaluation).
      output_dir: folder for the .tflite files, report.json and report.md.
      config: variants, shapes, IO type, sample counts.
      optimize_config: pruning and QAT fine-tune settings.
      data_dir: prepared dataset (train split: calibration and fine-tunes; val: scoring);
        None converts only what needs no data and leaves quality unscored.
      source: where the model came from (a workdir), for the report.

    Returns:
      The report (as written to report.json).
    """
    config.validate()
    optimize_config.validate()
    multiple = spatial_multiple(experiment.model)
    bad = [list(shape) for shape in config.input_shapes if shape[0] % multiple or
           shape[1] % multiple]
    if bad:
        raise ValueError(f"input shapes {bad} are not multiples of {multiple}, which the "
                         f"{experiment.name} model ({experiment.model.encoder_stages} encoder "
                         "stages) needs")
    os.makedirs(output_dir, exist_ok=True)
    needed = {VARIANTS[v][0] for v in config.variants}
    sources, source_errors = build_sources(model, needed, data_dir, experiment, optimize_config)
    evaluation = _evaluation(sources, data_dir, experiment, config)
    with_metadata = len(model.inputs) > 1
    cache: dict[tuple[int, int], list] = {}

    def calibration(shape: tuple[int, int]) -> list:
        if data_dir is None:
            raise ValueError("empty representative set: no data folder (pass --data)")
        if shape not in cache:
            cache[shape] = representative_samples(data_dir, experiment,
                                                  config.representative_samples, shape,
                                                  with_metadata)
        return cache[shape]

    entries = [export_variant(variant, tuple(shape), output_dir, sources, source_errors,
                              calibration, config, evaluation, experiment.model)
               for shape in config.input_shapes for variant in config.variants]
    add_reductions(entries)
    first = list(config.input_shapes[0])
    report = {
        "source": source, "experiment": experiment.name, "data": data_dir,
        "export_config": dataclasses.asdict(config),
        "optimize_config": dataclasses.asdict(optimize_config),
        "pruned_keras_sparsity": (_keras_sparsity(sources["pruned"]) if "pruned" in sources
                                  else None),
        "evaluation": {k: v for k, v in evaluation.items()
                       if k not in ("tiles", "references")} | (
            {"tiles": len(evaluation["tiles"])} if "tiles" in evaluation else {}),
        "variants": entries,
        "errors": [{"variant": e["variant"], "shape": e["shape"], "error": e["error"]}
                   for e in entries if e["error"]],
        "recommendation": recommend(entries, first),
    }
    write_report(output_dir, report)
    return report


def _keras_sparsity(model: keras.Model) -> float:
    from deepisp_tf.optimize import weight_sparsity  # pylint: disable=import-outside-toplevel
    return weight_sparsity(model)


def data_dir_for(workdir: str, data_dir: str | None = None) -> str | None:
    """Return `data_dir`, else the "data" recorded in W/run.json by tools.train, else None."""
    if data_dir:
        return data_dir
    path = os.path.join(workdir, "run.json")
    if os.path.isfile(path):
        with open(path) as handle:
            return json.load(handle).get("data")
    return None


def export_workdir(workdir: str, output_dir: str, config: ExportConfig = ExportConfig(),
                   optimize_config: OptimizeConfig = OptimizeConfig(),
                   data_dir: str | None = None) -> dict[str, Any]:
    """Load the trained model of a workdir and `export_model` it (see there).

    Raises:
      ModelNotFoundError: no such workdir, or it holds no config / trained model.
    """
    from deepisp_tf.model.io import ModelNotFoundError, load_trained  # pylint: disable=C0415

    if not os.path.isdir(workdir):
        raise ModelNotFoundError(f"{workdir}: no such training workdir")
    model, experiment = load_trained(workdir)
    return export_model(model, experiment, output_dir, config, optimize_config,
                        data_dir_for(workdir, data_dir), source=os.path.abspath(workdir))


# ----------------------------------------------------------------------------- report


def write_report(output_dir: str, report: dict[str, Any]) -> None:
    """Write report.json and report.md atomically."""
    atomic.write_json(os.path.join(output_dir, "report.json"), _finite(report))
    atomic.write_text(os.path.join(output_dir, "report.md"), report_markdown(report))


def _finite(value: Any) -> Any:
    """Return `value` with numpy scalars as Python ones and inf/nan as strings (standard JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _fmt(value: Any, spec: str = ".2f", missing: str = "–") -> str:
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def report_markdown(report: dict[str, Any]) -> str:
    """Render the report as Markdown: recommendation, one table row per file, ops, errors."""
    rec = report["recommendation"]
    evaluation = report["evaluation"]
    lines = [f"# TFLite export: {report['experiment']}", "",
             f"Source `{report['source']}`, data `{report['data']}`.", "",
             f"**Recommended: `{rec.get('file') or rec['variant']}`** — {rec['reason']}.", ""]
    if "keras_float" in evaluation:
        keras_float = evaluation["keras_float"]
        lines += [f"Keras float model on {evaluation['tiles']} validation tiles "
                  f"({evaluation['shape'][0]}x{evaluation['shape'][1]}): PSNR "
                  f"{keras_float['psnr']:.2f} dB, SSIM {keras_float['ssim']:.4f}. "
                  f"Metrics: {evaluation['protocol']}.", ""]
    else:
        lines += [f"Quality {evaluation.get('error', 'not scored')}.", ""]
    lines += ["| file | size kB | gzip kB | vs float32 | gzip vs float32 | sparsity | PSNR | "
              "SSIM | drop dB | parity dB (min) | ms / invoke | XNNPACK all ops | GPU | NNAPI |",
              "|" + "---|" * 14]
    for e in (e for e in report["variants"] if not e["error"]):
        lines.append("| " + " | ".join([
            f"`{e['file']}`", _fmt(e["size_bytes"] / 1e3, ".1f"),
            _fmt(e["gzip_bytes"] / 1e3, ".1f"),
            _fmt(e.get("reduction_vs_float32_pct"), ".1f") + "%",
            _fmt(e.get("gzip_reduction_vs_float32_pct"), ".1f") + "%",
            _fmt(e["weight_sparsity"], ".3f"), _fmt(e.get("psnr")), _fmt(e.get("ssim"), ".4f"),
            _fmt(e.get("psnr_drop_db"), "+.2f"),
            f"{_fmt(e.get('parity_psnr_db'), '.1f')} ({_fmt(e.get('parity_min_psnr_db'), '.0f')})",
            _fmt(e["latency_ms"]), _fmt(e["xnnpack_all_delegated"]),
            _fmt(e["gpu"]["compatible"]),
            (f"API {e['nnapi']['min_android_api']}" if e["nnapi"]["supported"]
             else "no: " + ", ".join(e["nnapi"]["unsupported_ops"]))]) + " |")
    lines += ["", "## Ops", ""]
    for e in (e for e in report["variants"] if not e["error"]):
        ops = ", ".join(f"{name} x{count}" for name, count in e["ops"].items())
        left = ", ".join(e["not_delegated_ops"]) or "none"
        gpu = "; ".join(e["gpu"]["warnings"]) or e["gpu"]["analyzer_summary"]
        lines += [f"- `{e['file']}` ({e['op_count']} ops, IO {e['io_dtypes']}): {ops}. "
                  f"Not on XNNPACK: {left}. GPU analyzer: {gpu}"]
    if report["errors"]:
        lines += ["", "## Errors", ""]
        lines += [f"- {e['variant']} {e['shape'][0]}x{e['shape'][1]}: {e['error']}"
                  for e in report["errors"]]
    lines += ["", "Sizes are of the files on disk (gzip -9 for the gzip column); reductions are "
              "against the float32 file of the same shape. Parity is the PSNR of the LiteRT "
              "output against the Keras model the variant was converted from (float, QAT or "
              "pruned), with the minimum stated per mode in deepisp_tf/export.py. Latency is the "
              f"median of LiteRT invokes with {report['export_config']['threads']} threads on "
              "this machine's CPU. The NNAPI column is a static check against a documented op "
              "table, not a device run.", ""]
    return "\n".join(lines)


def summary(report: dict[str, Any], output_dir: str) -> str:
    """Return a few lines for the terminal: one per file or error, then the recommendation."""
    lines = []
    for e in report["variants"]:
        name = f"{e['variant']} {e['shape'][0]}x{e['shape'][1]}"
        if e["error"]:
            lines.append(f"{name:28s} FAILED: {e['error']}")
            continue
        quality_text = (f", PSNR {e['psnr']:.2f} dB ({e['psnr_drop_db']:+.2f})"
                        if "psnr_drop_db" in e else "")
        lines.append(f"{name:28s} {e['size_bytes'] / 1e3:8.1f} kB "
                     f"({_fmt(e.get('reduction_vs_float32_pct'), '.0f')}% vs float32), "
                     f"{e['latency_ms']:.2f} ms{quality_text}")
    rec = report["recommendation"]
    lines.append(f"recommended: {rec.get('file') or rec['variant']}: {rec['reason']}")
    lines.append(f"report: {os.path.join(output_dir, 'report.md')}")
    return "\n".join(lines)
