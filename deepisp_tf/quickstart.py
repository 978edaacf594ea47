"""The one-command quickstart: the whole main job on the embedded synthetic data, resumable.

    [1/5] prepare    synthetic DNGs -> tiles      deepisp_tf.data.prepare (tools.prepare_data)
    [2/5] train      the `quickstart` preset      deepisp_tf.train (tools.train)
    [3/5] convert    float32 + int8 TFLite        deepisp_tf.export (tools.convert_tflite)
    [4/5] evaluate   int8 model vs classic ISPs   deepisp_tf.evaluate (tools.evaluate)
    [5/5] benchmark  concurrent runtime vs rawpy  deepisp_tf.bench (tools.benchmark)

Output folder O: O/data, O/train, O/tflite, O/eval/<set>, O/bench (each the tool's own output),
O/steps.json (wall time of every finished step) and O/summary.md / O/summary.json (one table of
the figures of every step), all written atomically. Running again resumes: a step whose output
is complete and matches the settings is skipped (prepare and train also resume inside
themselves); once a step runs, every later step runs again, so no output is stale.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable

from deepisp_tf import atomic, bench, export
from deepisp_tf import evaluation as evaluate
from deepisp_tf import training as train
from deepisp_tf import config as config_lib
from deepisp_tf.data import prepare
from deepisp_tf.model import io
from deepisp_tf.raw import synthetic

STEPS_FILE = "steps.json"
SUMMARY_MD, SUMMARY_JSON = "summary.md", "summary.json"
SYNTHETIC_SET, RAW_SAMPLES_SET = "synthetic_test", "raw_samples"
# Scored on validation tiles at 128 (the quickstart tiles are 130); 256 is deployed.
QUICKSTART_EXPORT = config_lib.ExportConfig(variants=("float32", "int8"),
                                            input_shapes=((128, 128), (256, 256)))
QUICKSTART_BENCH = bench.Settings(model="", threads=2, workers=(1, 2), repeats=3)


class QuickstartError(RuntimeError):
    """A step finished without the output the next step needs; the message says which."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the quickstart runs. The defaults are the real quickstart; tests shrink them.

    Attributes:
      output: the report folder (created; rerun with the same folder to resume).
      preset: config preset trained.
      overrides: `section.field=value` applied to the preset (`config.override`).
      synthetic_limit: only the first N synthetic files (None: the whole set).
      prepare_workers: prepare worker processes (None: CPU count).
      export: TFLite variants and shapes; the first shape is scored on validation tiles.
      deploy_variant: the variant evaluated and benchmarked, at the last export shape.
      eval_limit: evaluate at most N images per set.
      raw_samples: a folder of real RAW files also evaluated, or None.
      benchmark: runtime benchmark settings (its model is the deployed file).
      train_verbose: Keras progress (1 bar, 2 a line per epoch).
    """

    output: str = "runs/quickstart"
    preset: str = "quickstart"
    overrides: tuple[str, ...] = ()
    synthetic_limit: int | None = None
    prepare_workers: int | None = None
    export: config_lib.ExportConfig = QUICKSTART_EXPORT
    deploy_variant: str = "int8"
    eval_limit: int | None = None
    raw_samples: str | None = None
    benchmark: bench.Settings = QUICKSTART_BENCH
    train_verbose: int = 2


def default_raw_samples() -> str | None:
    """Return $DEEPISP_RAW_SAMPLES, else ../shared/raw_samples when that folder exists."""
    path = os.environ.get("DEEPISP_RAW_SAMPLES") or os.path.join("..", "shared", "raw_samples")
    return path if os.path.isdir(path) else None


@dataclasses.dataclass(frozen=True)
class Context:
    """Everything a step needs: settings, the validated experiment, folders, and a printer."""

    settings: Settings
    experiment: config_lib.ExperimentConfig
    echo: Callable[[str], None]

    def path(self, *parts: str) -> str:
        return os.path.join(os.path.abspath(self.settings.output), *parts)

    @property
    def deploy_model(self) -> str:
        height, width = self.settings.export.input_shapes[-1]
        return self.path("tflite", f"{self.settings.deploy_variant}_{height}x{width}.tflite")

    def eval_sets(self) -> dict[str, str]:
        """Return {set name: input folder}: the synthetic test split, and the real files."""
        sets = {SYNTHETIC_SET: self.path("data")}
        if self.settings.raw_samples:
            sets[RAW_SAMPLES_SET] = os.path.abspath(self.settings.raw_samples)
        return sets

    def bench_settings(self) -> bench.Settings:
        return dataclasses.replace(self.settings.benchmark, model=self.deploy_model)


def _jsonable(value: Any) -> Any:
    """Return `value` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


# ----------------------------------------------------------------------------- steps


def _prepare_extra(ctx: Context) -> dict[str, Any]:
    return _jsonable({"synthetic": dataclasses.asdict(ctx.experiment.synthetic),
                      "synthetic_limit": ctx.settings.synthetic_limit})


def _prepare_done(ctx: Context) -> bool:
    manifest = prepare.load_manifest(ctx.path("data")) or {}
    expected = {**_prepare_extra(ctx),
                "settings": _jsonable(prepare.settings_of(ctx.experiment.data))}
    return bool(manifest.get("complete")) and all(manifest.get(k) == v
                                                  for k, v in expected.items())


def _prepare_run(ctx: Context) -> None:
    """Write the synthetic DNGs, then tile them (both skip what a previous run finished)."""
    paths = synthetic.generate(ctx.path("data", "raw"), ctx.experiment.synthetic,
                               limit=ctx.settings.synthetic_limit)
    manifest = prepare.prepare_files(paths, ctx.path("data"), ctx.experiment.data,
                                     source="synthetic", workers=ctx.settings.prepare_workers,
                                     extra=_prepare_extra(ctx))
    ctx.echo(prepare.format_summary(manifest))
    if not prepare.usable(manifest):
        raise QuickstartError(f"prepare: {ctx.path('data')} has no training tiles")


def _train_done(ctx: Context) -> bool:
    run = train.read_json(ctx.path("train", train.RUN_FILE)) or {}
    return (bool(run.get("complete")) and os.path.isfile(io.model_path(ctx.path("train")))
            and _same_experiment(ctx))


def _same_experiment(ctx: Context) -> bool:
    """Return whether the train workdir is empty or holds a run of this very experiment."""
    saved = train.read_json(ctx.path("train", io.CONFIG_FILE))
    return saved is None or saved == _jsonable(ctx.experiment.to_dict())


def _train_run(ctx: Context) -> None:
    """Train (or resume) the preset; refuse a workdir trained with other settings."""
    if not _same_experiment(ctx):
        raise QuickstartError(f"train: {ctx.path('train')} holds a run with other settings; "
                              "use a new --output folder")
    summary = train.train(ctx.experiment, ctx.path("data"), ctx.path("train"),
                          verbose=ctx.settings.train_verbose)
    ctx.echo(train.format_summary(summary))


def _convert_done(ctx: Context) -> bool:
    report = train.read_json(ctx.path("tflite", "report.json")) or {}
    return (report.get("export_config") == _jsonable(dataclasses.asdict(ctx.settings.export))
            and report.get("source") == ctx.path("train")
            and os.path.isfile(ctx.deploy_model))


def _convert_run(ctx: Context) -> None:
    report = export.export_workdir(ctx.path("train"), ctx.path("tflite"), ctx.settings.export,
                                   data_dir=ctx.path("data"))
    ctx.echo(export.summary(report, ctx.path("tflite")))
    if not os.path.isfile(ctx.deploy_model):
        errors = "; ".join(e["error"] for e in report["errors"]) or "not produced"
        raise QuickstartError(f"convert: {ctx.deploy_model}: {errors}")


def _eval_done_for(ctx: Context, name: str, input_path: str) -> bool:
    report = train.read_json(ctx.path("eval", name, "report.json")) or {}
    files = evaluate.resolve_input(input_path).files[:ctx.settings.eval_limit]
    return (bool(report.get("complete"))
            and os.path.abspath(report["model"].get("model", "")) == ctx.deploy_model
            and os.path.abspath(report["input"]["path"]) == input_path
            and len(report["images"]) == len(files))


def _evaluate_done(ctx: Context) -> bool:
    return all(_eval_done_for(ctx, name, path) for name, path in ctx.eval_sets().items())


def _evaluate_run(ctx: Context) -> None:
    for name, input_path in ctx.eval_sets().items():
        ctx.echo(f"  evaluating {os.path.basename(ctx.deploy_model)} on {name} ({input_path})")
        report = evaluate.evaluate(ctx.deploy_model, input_path, ctx.path("eval", name),
                                   limit=ctx.settings.eval_limit)
        if "ours" not in report["means"]:
            raise QuickstartError(f"evaluate: no image of {input_path} could be evaluated "
                                  f"(see {ctx.path('eval', name, 'report.md')})")
        ctx.echo(evaluate.format_markdown(report))


def _bench_files(ctx: Context) -> list[str]:
    return evaluate.resolve_input(ctx.path("data")).files


def _benchmark_done(ctx: Context) -> bool:
    report = train.read_json(ctx.path("bench", "report.json")) or {}
    return (report.get("settings") == _jsonable(dataclasses.asdict(ctx.bench_settings()))
            and report.get("files") == [os.path.basename(p) for p in _bench_files(ctx)])


def _benchmark_run(ctx: Context) -> None:
    settings, paths = ctx.bench_settings(), _bench_files(ctx)
    ctx.echo(f"  {len(paths)} test DNGs: serial, concurrent (preprocessing threads "
             f"{', '.join(map(str, settings.workers))}) and rawpy's render, best of "
             f"{settings.repeats}")
    report = bench.benchmark_files(paths, settings)
    bench.write_report(report, ctx.path("bench"))
    ctx.echo(bench.format_markdown(report))


@dataclasses.dataclass(frozen=True)
class Step:
    """One quickstart step: `done` reads its outputs, `run` calls the library to make them."""

    name: str
    title: str
    done: Callable[[Context], bool]
    run: Callable[[Context], None]


STEPS: tuple[Step, ...] = (
    Step("prepare", "synthetic DNG set -> tiles", _prepare_done, _prepare_run),
    Step("train", "the preset on the synthetic tiles", _train_done, _train_run),
    Step("convert", "TFLite variants, scored through LiteRT", _convert_done, _convert_run),
    Step("evaluate", "the deployed model vs the classic baselines", _evaluate_done,
         _evaluate_run),
    Step("benchmark", "concurrent LiteRT runtime vs rawpy's render", _benchmark_done,
         _benchmark_run),
)


def _print(line: str) -> None:
    print(line, flush=True)  # in order with the tools' own bars and logs, even in a log file


def run_quickstart(settings: Settings = Settings(), echo: Callable[[str], None] = _print
                   ) -> dict[str, Any]:
    """Run (or resume) every step, then write and return the summary.

    Args:
      settings: what to run; `Settings()` is the real quickstart.
      echo: where progress lines go (the tools' own bars and logs go to the terminal).

    Returns:
      The summary (also O/summary.json; O/summary.md holds its table).

    Raises:
      QuickstartError: a step produced nothing the next step can use.
      ValueError: bad overrides or export settings.
    """
    started, load_start = time.perf_counter(), os.getloadavg()
    experiment = config_lib.override(config_lib.get_preset(settings.preset),
                                     list(settings.overrides))
    settings.export.validate()
    if settings.raw_samples and not os.path.isdir(settings.raw_samples):
        raise QuickstartError(f"{settings.raw_samples}: raw samples folder does not exist")
    ctx = Context(settings, experiment, echo)
    os.makedirs(ctx.path(), exist_ok=True)
    timings = train.read_json(ctx.path(STEPS_FILE)) or {}
    status, rerun = {}, False
    for index, step in enumerate(STEPS, 1):
        header = f"[{index}/{len(STEPS)}] {step.name}: {step.title}"
        if not rerun and step.done(ctx):
            took = timings.get(step.name, {}).get("seconds")
            echo(f"{header}: done already, skipped"
                 + (f" (took {took:.0f} s)" if took is not None else ""))
            status[step.name] = "skipped"
            continue
        echo(header)
        step_started = time.perf_counter()
        step.run(ctx)
        timings[step.name] = {"seconds": round(time.perf_counter() - step_started, 2),
                              "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "load_average": list(os.getloadavg())}
        atomic.write_json(ctx.path(STEPS_FILE), timings)
        echo(f"{header}: finished in {timings[step.name]['seconds']:.0f} s")
        status[step.name], rerun = "ran", True
    summary = build_summary(ctx, status, timings)
    summary["wall_seconds"] = {"this_run": round(time.perf_counter() - started, 2),
                               "steps_total": round(sum(t["seconds"] for t in timings.values()
                                                        if t.get("seconds") is not None), 2)}
    summary["machine"] = {"cpu_count": os.cpu_count(), "load_average_start": list(load_start),
                          "load_average_end": list(os.getloadavg())}
    atomic.write_json(ctx.path(SUMMARY_JSON), summary)
    atomic.write_text(ctx.path(SUMMARY_MD), format_markdown(summary))
    return summary


# ----------------------------------------------------------------------------- summary


def _variant_entry(report: dict[str, Any], variant: str, shape: list[int]) -> dict[str, Any]:
    for entry in report["variants"]:
        if entry["variant"] == variant and entry["shape"] == shape and not entry["error"]:
            return entry
    return {}


def conversion_section(report: dict[str, Any], deploy_variant: str) -> dict[str, Any]:
    """Return float32 and the deployed variant at the scored shape: size, reduction, PSNR."""
    shape = report["export_config"]["input_shapes"][0]
    float32, deployed = (_variant_entry(report, v, shape) for v in ("float32", deploy_variant))
    drop = (float32["psnr"] - deployed["psnr"] if "psnr" in float32 and "psnr" in deployed
            else None)
    return {"scored_shape": shape, "tiles": report["evaluation"].get("tiles"),
            "keras_float": report["evaluation"].get("keras_float"),
            "float32": {k: float32.get(k) for k in ("size_bytes", "psnr", "ssim")},
            "quantized": {"variant": deploy_variant, "size_bytes": deployed.get("size_bytes"),
                          "reduction_pct": deployed.get("reduction_vs_float32_pct"),
                          "psnr": deployed.get("psnr"), "ssim": deployed.get("ssim"),
                          "drop_vs_float32_db": drop,
                          "drop_vs_keras_db": deployed.get("psnr_drop_db")}}


def evaluation_section(report: dict[str, Any]) -> dict[str, Any]:
    """Return the images scored and each method's mean PSNR / SSIM of one evaluation."""
    methods = {m: {"psnr": s["psnr"], "ssim": s["ssim"]} for m, s in report["means"].items()}
    return {"input": report["input"]["path"], "note": report["input"]["note"],
            "images": report["means"]["ours"]["images"], "methods": methods}


def benchmark_section(report: dict[str, Any]) -> dict[str, Any]:
    """Return the headline throughput of a file-mode benchmark report."""
    summary = report["summary"]
    return {"files": len(report["files"]),
            "megapixels": report["runs"][0]["megapixels"] if report["runs"] else None,
            "threads": report["settings"]["threads"],
            "serial_mp_s": summary["serial_megapixels_per_s"],
            "concurrent_mp_s": summary["concurrent_megapixels_per_s"],
            "concurrent_workers": summary["best_concurrent_workers"],
            "rawpy_mp_s": summary["rawpy_megapixels_per_s"],
            "ratio_concurrent_to_rawpy": summary["ratio_concurrent_to_rawpy"]}


def build_summary(ctx: Context, status: dict[str, str], timings: dict[str, Any]
                  ) -> dict[str, Any]:
    """Read every step's own report into the summary's sections."""
    manifest = prepare.load_manifest(ctx.path("data"))
    run = train.read_json(ctx.path("train", train.RUN_FILE))
    keys = ("epochs", "wall_seconds", "tiles_per_second", "best_epoch", "best_val_psnr",
            "best_val_ssim", "params", "kmac_per_pixel")
    return {
        "output": ctx.path(), "preset": ctx.experiment.name,
        "overrides": list(ctx.settings.overrides),
        "dataset": {split: {k: manifest["splits"][split][k] for k in ("files", "tiles")}
                    for split in prepare.SPLITS},
        "training": {key: run[key] for key in keys},
        "conversion": {"deployed": os.path.basename(ctx.deploy_model),
                       **conversion_section(train.read_json(ctx.path("tflite", "report.json")),
                                            ctx.settings.deploy_variant)},
        "evaluation": {name: evaluation_section(train.read_json(ctx.path("eval", name,
                                                                   "report.json")))
                       for name in ctx.eval_sets()},
        "benchmark": benchmark_section(train.read_json(ctx.path("bench", "report.json"))),
        "steps": {step.name: {"status": status[step.name],
                              **{k: timings.get(step.name, {}).get(k)
                                 for k in ("seconds", "load_average")}}
                  for step in STEPS},
    }


def _num(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec) + unit


def format_markdown(summary: dict[str, Any]) -> str:
    """Return the one summary table (Markdown) and where the reports are."""
    data, run, conv, bench_ = (summary[k] for k in ("dataset", "training", "conversion",
                                                    "benchmark"))
    deployed, float32 = conv["quantized"], conv["float32"]
    variant = deployed["variant"]
    shape = "x".join(map(str, conv["scored_shape"]))
    rows = [("dataset", f"{split} files / tiles", f"{data[split]['files']} / "
             f"{data[split]['tiles']}") for split in prepare.SPLITS]
    rows += [
        ("training", "epochs, wall time", f"{run['epochs']}, {_num(run['wall_seconds'], '.0f')}"
         f" s ({_num(run['tiles_per_second'], '.0f')} tiles/s)"),
        ("training", "best val PSNR / SSIM", f"{_num(run['best_val_psnr'], '.2f', ' dB')} / "
         f"{_num(run['best_val_ssim'], '.4f')} (epoch {run['best_epoch']})"),
        ("training", "params, kMAC / px",
         f"{run['params'] / 1e6:.3f} M, {_num(run['kmac_per_pixel'])}"),
        ("conversion", f"float32 / {variant} size",
         f"{_num(float32['size_bytes'] and float32['size_bytes'] / 1e3, '.0f', ' kB')} / "
         f"{_num(deployed['size_bytes'] and deployed['size_bytes'] / 1e3, '.0f', ' kB')} "
         f"({_num(deployed['reduction_pct'], '.0f', '%')} smaller)"),
        ("conversion", f"val PSNR through LiteRT ({conv['tiles']} tiles, {shape})",
         f"float32 {_num(float32['psnr'], '.2f', ' dB')}, {variant} "
         f"{_num(deployed['psnr'], '.2f', ' dB')} ({variant} drop vs float32 "
         f"{_num(deployed['drop_vs_float32_db'], '+.2f', ' dB')})")]
    for name, result in summary["evaluation"].items():
        methods = result["methods"]
        scores = ", ".join(f"{evaluate.METHODS[m]}{' ' + variant if m == 'ours' else ''} "
                           f"{_num(methods[m]['psnr'])} / {_num(methods[m]['ssim'], '.4f')}"
                           for m in evaluate.METHODS if m in methods)
        rows.append(("evaluation", f"{name} ({result['images']} images) PSNR / SSIM", scores))
    rows.append(("benchmark", f"MP/s on {bench_['files']} test DNGs ({bench_['threads']} "
                 "interpreter threads)",
                 f"concurrent {_num(bench_['concurrent_mp_s'])} vs rawpy render "
                 f"{_num(bench_['rawpy_mp_s'])}: {_num(bench_['ratio_concurrent_to_rawpy'])}x "
                 f"(serial {_num(bench_['serial_mp_s'])})"))
    for name, step in summary["steps"].items():
        rows.append(("wall time", name, f"{_num(step['seconds'], '.1f', ' s')}"
                     + (" (earlier run, skipped now)" if step["status"] == "skipped" else "")))
    wall, host = summary["wall_seconds"], summary["machine"]
    rows.append(("wall time", "all steps / this run", f"{wall['steps_total']:.0f} s / "
                 f"{wall['this_run']:.0f} s (load {host['load_average_start'][0]:.1f} -> "
                 f"{host['load_average_end'][0]:.1f} on {host['cpu_count']} CPUs)"))
    lines = [f"# Quickstart: `{summary['preset']}`", "", "| step | figure | value |",
             "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows), "",
             f"Reports: `{summary['output']}/` — data/manifest.json, train/run.json, "
             "tflite/report.md, " + ", ".join(f"eval/{n}/report.md" for n in
                                              summary["evaluation"]) + ", bench/report.md."]
    return "\n".join(lines) + "\n"
