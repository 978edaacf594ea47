"""The one-command quickstart: the whole main job on the embedded synthetic data, resumable.

    [1/5] prepare    synthetic DNGs -> tiles      deepisp_tf.data.prepare (tools.prepare_data)
    [2/5] train      the `quickstart` preset      deepisp_tf.training (tools.train)
    [3/5] convert    the preset's export          deepisp_tf.export (tools.convert_tflite)
    [4/5] evaluate   int8 model vs classic ISPs   deepisp_tf.evaluation (tools.evaluate)
    [5/5] benchmark  concurrent runtime vs rawpy  deepisp_tf.runtime.bench (tools.benchmark)

Every setting comes from the preset (`config.ExperimentConfig`, with overrides): the export's
variants and shapes are its `export` section; the deployed model is `deploy_variant` at the last
export shape. Output folder O: O/data, O/train, O/tflite, O/eval/<set>, O/bench (each the tool's
own output), O/steps.json (wall time of every finished step) and O/summary.md / O/summary.json
(each step's own summary, side by side), all written atomically. Running again resumes: a step
whose output is complete and matches the settings is skipped (prepare and train also resume
inside themselves); once a step runs, every later step runs again, so no output is stale.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

from deepisp_tf import atomic, constants, export
from deepisp_tf import evaluation as evaluate
from deepisp_tf import training as train
from deepisp_tf.runtime import bench
from deepisp_tf import config as config_lib
from deepisp_tf.data import prepare
from deepisp_tf.model import io
from deepisp_tf.quickstart_summary import format_markdown
from deepisp_tf.raw import synthetic

STEPS_FILE = "steps.json"
SUMMARY_MD, SUMMARY_JSON = "summary.md", "summary.json"
SYNTHETIC_SET, RAW_SAMPLES_SET = "synthetic_test", "raw_samples"
# The runtime's own defaults (one thread per interpreter, one interpreter per CPU), best of 2.
_CPUS = os.cpu_count() or 1
QUICKSTART_BENCH = bench.Settings(model="", threads=1, interpreters=_CPUS, workers=(_CPUS,),
                                  repeats=2)
# The test files repeated to >= 20 MP, so the ratio to rawpy means something; in memory and
# file to file (JPEG and 16-bit PNG, alternated with rawpy + cv2.imwrite).
QUICKSTART_BENCH_FILES = bench.FileOptions(file_to_file=("jpg", "png"), rounds=1,
                                           min_megapixels=20.0)
TRAINING_SECTIONS = ("data", "model", "train", "synthetic")   # what a trained workdir fixes


class QuickstartError(RuntimeError):
    """A step finished without the output the next step needs; the message says which."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the quickstart runs. The defaults are the real quickstart; tests shrink them.

    Attributes:
      output: the report folder (created; rerun with the same folder to resume).
      preset: config preset run (its export section sets the converted variants and shapes).
      overrides: `section.field=value` applied to the preset (`config.override`).
      synthetic_limit: only the first N synthetic files (None: the whole set).
      prepare_workers: prepare worker processes (None: CPU count).
      deploy_variant: the variant evaluated and benchmarked, at the last export shape.
      eval_limit: evaluate at most N images per set.
      raw_samples: a folder of real RAW files also evaluated, or None.
      benchmark: runtime benchmark settings (its model is the deployed file).
      benchmark_files: what the benchmark runs besides the in-memory modes (file to file, the
        megapixels its inputs are repeated to).
      train_verbose: Keras progress (1 bar, 2 a line per epoch).
    """

    output: str = "runs/quickstart"
    preset: str = config_lib.DEFAULT_PRESET
    overrides: tuple[str, ...] = ()
    synthetic_limit: int | None = None
    prepare_workers: int | None = None
    deploy_variant: str = "int8"
    eval_limit: int | None = None
    raw_samples: str | None = None
    benchmark: bench.Settings = QUICKSTART_BENCH
    benchmark_files: bench.FileOptions = QUICKSTART_BENCH_FILES
    train_verbose: int = 2


def default_raw_samples() -> str | None:
    """Return $DEEPISP_RAW_SAMPLES, else ../shared/raw_samples when that folder exists."""
    path = os.environ.get("DEEPISP_RAW_SAMPLES") or os.path.join("..", "shared", "raw_samples")
    return path if os.path.isdir(path) else None


def _jsonable(value: Any) -> Any:
    """Return `value` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


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
        height, width = self.experiment.export_shapes()[-1]
        return self.path("tflite", constants.tflite_name(
            self.settings.deploy_variant, height, width, self.experiment.export.packed_io))

    def eval_sets(self) -> dict[str, str]:
        """Return {set name: input folder}: the synthetic test split, and the real files."""
        sets = {SYNTHETIC_SET: self.path("data")}
        if self.settings.raw_samples:
            sets[RAW_SAMPLES_SET] = os.path.abspath(self.settings.raw_samples)
        return sets

    def bench_settings(self) -> bench.Settings:
        return dataclasses.replace(self.settings.benchmark, model=self.deploy_model)

    def prepare_extra(self) -> dict[str, Any]:
        return _jsonable({"synthetic": dataclasses.asdict(self.experiment.synthetic),
                          "synthetic_limit": self.settings.synthetic_limit})

    def training_settings(self) -> dict[str, Any]:
        return _jsonable({k: self.experiment.to_dict()[k] for k in TRAINING_SECTIONS})


# ----------------------------------------------------------------------------- steps


def _prepare_done(ctx: Context) -> bool:
    manifest = prepare.load_manifest(ctx.path("data")) or {}
    expected = {**ctx.prepare_extra(),
                "settings": _jsonable(prepare.settings_of(ctx.experiment.data))}
    return bool(manifest.get("complete")) and all(manifest.get(k) == v
                                                  for k, v in expected.items())


def _prepare_run(ctx: Context) -> None:
    """Write the synthetic DNGs, then tile them (both skip what a previous run finished)."""
    paths = synthetic.generate(ctx.path("data", "raw"), ctx.experiment.synthetic,
                               limit=ctx.settings.synthetic_limit)
    manifest = prepare.prepare_files(paths, ctx.path("data"), ctx.experiment.data,
                                     source="synthetic", workers=ctx.settings.prepare_workers,
                                     extra=ctx.prepare_extra())
    ctx.echo(prepare.format_summary(manifest))
    if not prepare.usable(manifest):
        raise QuickstartError(f"prepare: {ctx.path('data')} has no training tiles")


def _run_summary(ctx: Context) -> train.RunSummary | None:
    run = train.read_json(ctx.path("train", train.RUN_FILE))
    if run is None:
        return None
    return train.RunSummary(**{f.name: run[f.name] for f in dataclasses.fields(train.RunSummary)})


def _same_training(ctx: Context) -> bool:
    """Return whether the train workdir is empty or holds a run with these training settings."""
    if not os.path.isfile(ctx.path("train", constants.MODEL_CONFIG_FILE)):
        return True
    saved = io.load_config(ctx.path("train")).to_dict()
    return _jsonable({k: saved[k] for k in TRAINING_SECTIONS}) == ctx.training_settings()


def _train_done(ctx: Context) -> bool:
    summary = _run_summary(ctx)
    return (summary is not None and summary.complete and _same_training(ctx)
            and os.path.isfile(io.model_path(ctx.path("train"))))


def _train_run(ctx: Context) -> None:
    """Train (or resume) the preset; refuse a workdir trained with other settings."""
    if not _same_training(ctx):
        raise QuickstartError(f"train: {ctx.path('train')} holds a run with other settings; "
                              "use a new --output folder")
    summary = train.train(ctx.experiment, ctx.path("data"), ctx.path("train"),
                          verbose=ctx.settings.train_verbose)
    ctx.echo(train.format_summary(summary))


def _convert_done(ctx: Context) -> bool:
    return (export.is_current(ctx.path("tflite"), ctx.experiment.export, ctx.path("train"))
            and os.path.isfile(ctx.deploy_model))


def _convert_run(ctx: Context) -> None:
    report = export.export_model(io.load_trained(ctx.path("train"))[0], ctx.experiment,
                                 ctx.path("tflite"), data_dir=ctx.path("data"),
                                 source=ctx.path("train"))
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
            and report.get("options") == _jsonable(
                dataclasses.asdict(ctx.settings.benchmark_files))
            and report.get("source_files") == [os.path.basename(p) for p in _bench_files(ctx)])


def _benchmark_run(ctx: Context) -> None:
    settings, paths = ctx.bench_settings(), _bench_files(ctx)
    options = ctx.settings.benchmark_files
    ctx.echo(f"  {len(paths)} test DNGs repeated to >= {options.min_megapixels:g} MP: serial, "
             f"concurrent and rawpy's render in memory (best of {settings.repeats}), and file "
             f"to file ({', '.join(options.file_to_file) or 'none'}) against rawpy + "
             "cv2.imwrite")
    report = bench.benchmark_files(paths, settings, options=options)
    report["source_files"] = [os.path.basename(p) for p in paths]
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
      ValueError: a bad preset or overrides.
    """
    started, load_start = time.perf_counter(), os.getloadavg()
    experiment = config_lib.override(config_lib.get_preset(settings.preset),
                                     list(settings.overrides))
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


def build_summary(ctx: Context, status: dict[str, str], timings: dict[str, Any]
                  ) -> dict[str, Any]:
    """Put each step's own summary side by side: the manifest's splits, the run summary, the
    export headline, each evaluation's means and the benchmark's summary."""
    manifest = prepare.load_manifest(ctx.path("data"))
    evaluations = {name: train.read_json(ctx.path("eval", name, "report.json"))
                   for name in ctx.eval_sets()}
    bench_report = train.read_json(ctx.path("bench", "report.json"))
    return {
        "output": ctx.path(), "preset": ctx.experiment.name,
        "overrides": list(ctx.settings.overrides),
        "dataset": {split: {k: manifest["splits"][split][k] for k in ("files", "tiles")}
                    for split in prepare.SPLITS},
        "training": dataclasses.asdict(_run_summary(ctx)),
        "conversion": {"deployed": os.path.basename(ctx.deploy_model),
                       **export.headline(export.read_report(ctx.path("tflite")),
                                         ctx.settings.deploy_variant)},
        "evaluation": {name: {"input": report["input"]["path"], "means": report["means"]}
                       for name, report in evaluations.items()},
        "benchmark": {"files": len(bench_report["source_files"]),
                      "runs_files": len(bench_report["files"]),
                      "megapixels": bench_report["input_megapixels"],
                      "cpu": bench_report["machine"].get("cpu_model"),
                      "threads": bench_report["settings"]["threads"],
                      **bench_report["summary"],
                      "file_to_file": bench_report.get("file_to_file", {}).get("summary", {})},
        "steps": {step.name: {"status": status[step.name],
                              **{k: timings.get(step.name, {}).get(k)
                                 for k in ("seconds", "load_average")}}
                  for step in STEPS},
    }
