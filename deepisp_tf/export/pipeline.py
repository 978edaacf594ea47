"""Export one trained model: every variant at every shape, each file measured, one report.

`export_model` converts every requested variant (`config.EXPORT_VARIANTS`) at the experiment's
export shapes (`ExperimentConfig.export_shapes`: first the scored shape derived from the tiles,
then `ExportConfig.extra_shapes`), writes one `.tflite` per (variant, shape) atomically
(`constants.tflite_name`), runs each file through LiteRT (`export.litert`), scores the scored
shape on validation tiles, and writes `report.json` / `report.md` (`export.report`). The
recommended variant, at the largest shape it was converted at, is also copied to
`recommended.tflite` with the experiment's `config.json` beside it: the form `tools.infer
--model=` takes, like the shipped model's folder. A variant
that fails (no data for calibration, an unsupported layer, a converter error) is reported with
its error and the others still convert. Pruned and QAT sources come from tfmot fine-tunes
(`deepisp_tf.optimize`) on the training split.

With `ExportConfig.packed_io` the float and pruned variants are converted from the packed-IO
network (`unet.packed_io_model`), which `Runner` packs and unpacks, so the report measures them
at the full-resolution tile like the others; QAT models cannot be repacked and fail.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
from typing import Any, Callable, Sequence

import numpy as np

from deepisp_tf import atomic, constants, metrics, optimize
from deepisp_tf import config as config_lib
from deepisp_tf.config import ExperimentConfig, ExportConfig, ModelConfig, OptimizeConfig
from deepisp_tf.export import calibration, checks, litert, report as report_lib
from deepisp_tf.export.convert import (INTEGER_MODES, convert_model, fixed_shape_model,
                                       pack_samples, packed_fixed_model)
from deepisp_tf.export.variants import VARIANTS, add_reductions, recommend
from deepisp_tf.model.io import ModelNotFoundError, load_trained, save_config
from deepisp_tf.tf_env import keras, tf

log = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """One variant could not be produced; the message names the variant and the reason."""

    def __init__(self, variant: str, reason: str):
        self.variant = variant
        super().__init__(f"{variant}: {reason}")


def _error_text(error: Exception, limit: int = 2000) -> str:
    """One-paragraph error text for the report (converter errors can be pages long)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def measure(path: str, tflite: bytes, mode: str, config: ExportConfig,
            tiles: list | None, reference: list[np.ndarray] | None,
            keras_float: dict[str, float] | None) -> dict[str, Any]:
    """Run one written .tflite through LiteRT and return its report entry fields."""
    runner = litert.open_runner(path, config.threads)
    height, width = runner.tile_shape
    entry: dict[str, Any] = {
        "size_bytes": os.path.getsize(path), "gzip_bytes": len(gzip.compress(tflite, 9)),
        "weight_sparsity": litert.weight_sparsity(path), "io_dtypes": litert.io_dtypes(runner),
        **litert.delegation(runner), "gpu": checks.gpu_compatibility(tflite)}
    entry["nnapi"] = checks.nnapi_check(entry["ops"], mode in INTEGER_MODES)
    runs = max(3, round(config.latency_runs * calibration.REFERENCE_PIXELS / (height * width)))
    entry["latency_ms"] = litert.latency_ms(runner, runs)
    entry["latency_ms_per_megapixel"] = entry["latency_ms"] / (height * width / 1e6)
    if tiles is not None and reference is not None:
        outputs = [runner.run(bayer, metadata if runner.has_metadata else None)
                   for bayer, metadata, _ in tiles]
        entry.update(checks.quality(outputs, tiles))
        entry.update(checks.parity(outputs, reference))
        entry["parity_min_psnr_db"] = checks.PARITY_MIN_PSNR_DB[mode]
        entry["parity_ok"] = entry["parity_psnr_db"] >= checks.PARITY_MIN_PSNR_DB[mode]
        if keras_float is not None:
            entry["psnr_drop_db"] = keras_float["psnr"] - entry["psnr"]
            entry["ssim_drop"] = keras_float["ssim"] - entry["ssim"]
    return entry


def build_sources(model: keras.Model, needed: set[str], data_dir: str | None,
                  experiment: ExperimentConfig, config: OptimizeConfig
                  ) -> tuple[dict[str, keras.Model], dict[str, str]]:
    """Return the source models ("float", and "pruned"/"qat" when needed) and their errors."""
    sources, errors = {"float": model}, {}
    builders = {"pruned": optimize.prune, "qat": optimize.quantization_aware_train}
    for name in sorted(needed & set(builders)):
        if data_dir is None:
            errors[name] = "no training data to fine-tune on (pass --data or W/run.json 'data')"
            continue
        try:
            log.info("building the %s model (fine-tune on %s)", name, data_dir)
            calibration.require_records(data_dir, "train")
            dataset = optimize.train_dataset(data_dir, experiment.data, config)
            sources[name] = builders[name](model, dataset, config)
        except Exception as error:  # pylint: disable=broad-except  (reported per variant)
            log.exception("%s fine-tune failed", name)
            errors[name] = f"{type(error).__name__}: {error}"
    return sources, errors


def export_variant(variant: str, shape: tuple[int, int], output_dir: str,
                   sources: dict[str, keras.Model], source_errors: dict[str, str],
                   samples_for: Callable[[tuple[int, int]], list], config: ExportConfig,
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
                samples = samples_for(shape)
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
        path = atomic.write_bytes(os.path.join(output_dir, constants.tflite_name(
            variant, height, width, config.packed_io)), tflite)
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


def evaluate_sources(sources: dict[str, keras.Model], data_dir: str | None,
                     experiment: ExperimentConfig) -> dict[str, Any]:
    """Validation tiles at the scored shape, each source's Keras outputs and their scores."""
    height, width = experiment.scored_export_shape()
    result: dict[str, Any] = {"split": "val", "protocol": metrics.DESIGN.description,
                              "shape": [height, width]}
    try:
        if data_dir is None:
            raise ValueError("no data folder (pass --data or W/run.json 'data')")
        tiles = calibration.validation_tiles(data_dir, experiment, experiment.export.eval_tiles,
                                             height)
    except (ValueError, tf.errors.OpError) as error:
        result["error"] = f"not scored: {_error_text(error)}"
        return result
    result["tiles"] = tiles
    result["references"] = {name: checks.keras_outputs(model, tiles)
                            for name, model in sources.items()}
    result["keras"] = {name: checks.quality(outputs, tiles)
                       for name, outputs in result["references"].items()}
    result["keras_float"] = result["keras"]["float"]
    return result


def export_model(model: keras.Model, experiment: ExperimentConfig, output_dir: str,
                 config: ExportConfig | None = None,
                 optimize_config: OptimizeConfig | None = None,
                 data_dir: str | None = None, source: str = "") -> dict[str, Any]:
    """Convert every requested variant at every export shape, measure each, write the report.

    Args:
      model: the trained float model.
      experiment: its ExperimentConfig: data settings for calibration and scoring, and (unless
        given here) the export and fine-tune settings.
      output_dir: folder for the .tflite files, report.json and report.md.
      config: export settings instead of `experiment.export`.
      optimize_config: pruning and QAT fine-tune settings instead of `experiment.optimize`.
      data_dir: prepared dataset (train split: calibration and fine-tunes; val: scoring);
        None converts only what needs no data and leaves quality unscored (no recommendation).
      source: where the model came from (a workdir), for the report.

    Returns:
      The report (as written to report.json).

    Raises:
      ValueError: settings that do not validate, e.g. shapes the model cannot take (before any
        file is written).
    """
    experiment = dataclasses.replace(experiment, export=config or experiment.export,
                                     optimize=optimize_config or experiment.optimize)
    experiment.validate()
    config, shapes = experiment.export, experiment.export_shapes()
    os.makedirs(output_dir, exist_ok=True)
    needed = {VARIANTS[v][0] for v in config.variants}
    sources, source_errors = build_sources(model, needed, data_dir, experiment,
                                           experiment.optimize)
    evaluation = evaluate_sources(sources, data_dir, experiment)
    with_metadata = len(model.inputs) > 1
    cache: dict[tuple[int, int], list] = {}

    def samples_for(shape: tuple[int, int]) -> list:
        if data_dir is None:
            raise ValueError("empty representative set: no data folder (pass --data)")
        if shape not in cache:
            cache[shape] = calibration.representative_samples(
                data_dir, experiment, config.representative_samples, shape, with_metadata)
        return cache[shape]

    entries = [export_variant(variant, tuple(shape), output_dir, sources, source_errors,
                              samples_for, config, evaluation, experiment.model)
               for shape in shapes for variant in config.variants]
    add_reductions(entries)
    report = {
        "source": source, "experiment": experiment.name, "data": data_dir,
        "shapes": [list(shape) for shape in shapes],
        "export_config": dataclasses.asdict(config),
        "optimize_config": dataclasses.asdict(experiment.optimize),
        "pruned_keras_sparsity": (optimize.weight_sparsity(sources["pruned"])
                                  if "pruned" in sources else None),
        "evaluation": {k: v for k, v in evaluation.items()
                       if k not in ("tiles", "references")} | (
            {"tiles": len(evaluation["tiles"])} if "tiles" in evaluation else {}),
        "variants": entries,
        "errors": [{"variant": e["variant"], "shape": e["shape"], "error": e["error"]}
                   for e in entries if e["error"]],
        "recommendation": recommend(entries, list(shapes[0]), config.max_psnr_drop_db,
                                    evaluation.get("error")),
    }
    report["recommendation"]["deployed"] = write_recommended(
        output_dir, entries, report["recommendation"], experiment)
    report_lib.write_report(output_dir, report)
    return report


RECOMMENDED_FILE = "recommended.tflite"


def deploy_entry(entries: list[dict[str, Any]], recommendation: dict[str, Any]
                 ) -> dict[str, Any] | None:
    """Return the converted entry of the recommended variant at the largest export shape.

    The recommendation is decided at the scored shape (the validation tiles'); the runtime
    tiles a whole image, so the largest shape of the same variant is the one to run (fewer
    tile seams and per-tile overhead), the scored one when it is the only one.
    """
    if not recommendation.get("variant"):
        return None
    converted = [e for e in entries if e["variant"] == recommendation["variant"]
                 and not e["error"] and e["file"]]
    return max(converted, key=lambda e: e["shape"][0] * e["shape"][1], default=None)


def write_recommended(output_dir: str, entries: list[dict[str, Any]],
                      recommendation: dict[str, Any], experiment: ExperimentConfig
                      ) -> dict[str, Any] | None:
    """Copy the model to run to DIR/recommended.tflite (atomically), with DIR/config.json.

    Returns {"file", "from", "shape"} for the report, or None (and removes a stale
    recommended.tflite) when nothing is recommended.
    """
    target = os.path.join(output_dir, RECOMMENDED_FILE)
    entry = deploy_entry(entries, recommendation)
    if entry is None:
        if os.path.isfile(target):
            os.remove(target)
        return None
    with open(os.path.join(output_dir, entry["file"]), "rb") as handle:
        atomic.write_bytes(target, handle.read())
    save_config(experiment, output_dir)  # beside it, as in the shipped model's folder
    return {"file": RECOMMENDED_FILE, "from": entry["file"], "shape": entry["shape"]}


def data_dir_for(workdir: str, data_dir: str | None = None) -> str | None:
    """Return `data_dir`, else the "data" recorded in W/run.json by tools.train, else None."""
    if data_dir:
        return data_dir
    path = os.path.join(workdir, "run.json")
    if os.path.isfile(path):
        with open(path) as handle:
            return json.load(handle).get("data")
    return None


def export_workdir(workdir: str, output_dir: str, config: ExportConfig | None = None,
                   optimize_config: OptimizeConfig | None = None,
                   data_dir: str | None = None, overrides: Sequence[str] = ()
                   ) -> dict[str, Any]:
    """Load the trained model of a workdir and `export_model` it (see there).

    The export and fine-tune settings are the workdir's saved experiment's, with `overrides`
    (`section.field=value`, `config.override`) applied, unless `config` / `optimize_config`
    are given.

    Raises:
      ModelNotFoundError: no such workdir, or it holds no config / trained model.
      ValueError: bad overrides or settings.
    """
    if not os.path.isdir(workdir):
        raise ModelNotFoundError(f"{workdir}: no such training workdir")
    model, experiment = load_trained(workdir)
    experiment = config_lib.override(experiment, overrides)
    return export_model(model, experiment, output_dir, config, optimize_config,
                        data_dir_for(workdir, data_dir), source=os.path.abspath(workdir))
