"""The one-command quickstart: every step runs on tiny settings, the summary has every section
with finite numbers, an interrupted run resumes without redoing finished steps, a folder
holding other settings is refused rather than mixed, and `python -m tools.quickstart` runs the
same settings from its flags."""

import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from deepisp_tf import quickstart
from deepisp_tf import config as config_lib
from deepisp_tf.runtime import bench
from deepisp_tf.raw import dng
from deepisp_tf.runtime import frames

TINY_OVERRIDES = (
    "data.tile_size=34", "data.tile_stride=32", "data.crop_size=32", "data.max_tiles_per_file=4",
    "data.shuffle_buffer=8", "model.encoder_stages=2", "model.stem_filters=8",
    "model.decoder_filters=[8, 8]", "model.metadata_units=8", "train.batch_size=4",
    "train.epochs=1", "train.steps_per_epoch=2", "train.validation_steps=1",
    "train.image_summaries=0", "synthetic.variants_per_image=1", "synthetic.min_side=64",
    "synthetic.max_side=96", "export.extra_shapes=[]", "export.representative_samples=4",
    "export.eval_tiles=2", "export.latency_runs=1")
SYNTHETIC_LIMIT, PREPARE_WORKERS = 4, 1
STEP_NAMES = [step.name for step in quickstart.STEPS]


def tiny_settings(output, raw_samples) -> quickstart.Settings:
    """Four 64-96 px synthetic DNGs (2 train, 1 val, 1 test), 1 epoch x 2 steps, 32 px tiles;
    everything else (export variants, benchmark settings) as the real quickstart."""
    return quickstart.Settings(
        output=str(output), overrides=TINY_OVERRIDES, synthetic_limit=SYNTHETIC_LIMIT,
        prepare_workers=PREPARE_WORKERS, raw_samples=str(raw_samples),
        benchmark_files=dataclasses.replace(quickstart.QUICKSTART_BENCH_FILES,
                                            file_to_file=("jpg",), min_megapixels=0.02))


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt("killed during the benchmark")


def _mtimes(folder):
    return {name: os.stat(os.path.join(folder, name)).st_mtime_ns
            for name in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run once killed in the benchmark step, then again to finish; keep what each saw."""
    root = tmp_path_factory.mktemp("quickstart")
    raw_samples = root / "real"
    raw_samples.mkdir()
    dng.write_dng(raw_samples / "frame.dng", frames.synthetic_mosaic(96, 128, seed=0), "RGGB",
                  64, 4095, np.eye(3), (0.5, 1.0, 0.7))
    settings = tiny_settings(root / "out", raw_samples)
    first_lines, second_lines = [], []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench, "benchmark_files", _interrupt)
        with pytest.raises(KeyboardInterrupt):
            quickstart.run_quickstart(settings, echo=first_lines.append)
    after_first = {"steps": json.load(open(root / "out" / quickstart.STEPS_FILE)),
                   "summary_written": os.path.exists(root / "out" / quickstart.SUMMARY_JSON),
                   "tflite": _mtimes(root / "out" / "tflite"),
                   "eval": _mtimes(root / "out" / "eval" / quickstart.SYNTHETIC_SET)}
    summary = quickstart.run_quickstart(settings, echo=second_lines.append)
    return {"settings": settings, "out": str(root / "out"), "raw_samples": str(raw_samples),
            "first": first_lines,
            "second": second_lines, "after_first": after_first, "summary": summary}


def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def test_first_run_prints_a_header_per_step_and_stops_where_it_was_killed(runs):
    headers = [line for line in runs["first"] if line.startswith("[")]
    for index, name in enumerate(STEP_NAMES[:4], 1):
        assert any(line.startswith(f"[{index}/5] {name}: ") and "finished in" in line
                   for line in headers), headers
    assert any(line.startswith("[5/5] benchmark: ") for line in headers)
    assert sorted(runs["after_first"]["steps"]) == sorted(STEP_NAMES[:4])
    assert not runs["after_first"]["summary_written"]


def test_rerun_skips_the_finished_steps_and_finishes_the_interrupted_one(runs):
    statuses = {name: step["status"] for name, step in runs["summary"]["steps"].items()}
    assert statuses == {"prepare": "skipped", "train": "skipped", "convert": "skipped",
                        "evaluate": "skipped", "benchmark": "ran"}
    assert sum("done already, skipped" in line for line in runs["second"]) == 4
    assert _mtimes(os.path.join(runs["out"], "tflite")) == runs["after_first"]["tflite"]
    assert _mtimes(os.path.join(runs["out"], "eval", quickstart.SYNTHETIC_SET)) == \
        runs["after_first"]["eval"]
    for name in STEP_NAMES:  # a skipped step still reports the time it took when it ran
        assert runs["summary"]["steps"][name]["seconds"] > 0


def test_every_step_leaves_its_output_in_the_report_folder(runs):
    out = runs["out"]
    for path in ("data/manifest.json", "train/run.json", "train/final/model.keras",
                 "tflite/report.json", "tflite/float32_packed_32x32.tflite",
                 "tflite/int8_packed_32x32.tflite", "tflite/recommended.tflite",
                 "eval/synthetic_test/report.md", "eval/raw_samples/report.md",
                 "bench/report.json", "bench/report.md", "summary.md", "summary.json"):
        assert os.path.isfile(os.path.join(out, path)), path
    assert json.load(open(os.path.join(out, "summary.json"))) == json.loads(
        json.dumps(runs["summary"]))


def test_summary_has_every_section_with_finite_numbers(runs):
    summary = runs["summary"]
    dataset = summary["dataset"]
    assert [dataset[s]["files"] for s in ("train", "val", "test")] == [2, 1, 1]
    assert all(dataset[s]["tiles"] > 0 for s in dataset)
    assert summary["training"]["epochs"] == 1 and summary["training"]["params"] > 0
    conversion = summary["conversion"]
    assert conversion["deployed"] == "int8_packed_32x32.tflite"
    assert conversion["float32"]["size_bytes"] > conversion["quantized"]["size_bytes"] > 0
    assert 0 < conversion["quantized"]["reduction_pct"] < 100
    for name in (quickstart.SYNTHETIC_SET, quickstart.RAW_SAMPLES_SET):
        result = summary["evaluation"][name]
        assert {m["images"] for m in result["means"].values()} == {1}
        assert set(result["means"]) == {"ours", "rawpy_linear", "classic"}
    assert summary["benchmark"]["files"] == 1
    assert summary["benchmark"]["megapixels"] >= 0.02  # the one test DNG repeated to 0.02 MP
    assert summary["benchmark"]["runs_files"] > 1
    assert set(summary["benchmark"]["file_to_file"]) == {"jpg"}
    assert summary["benchmark"]["file_to_file"]["jpg"]["ratio"] > 0
    assert summary["benchmark"]["ratio_concurrent_to_rawpy"] == pytest.approx(
        summary["benchmark"]["concurrent_megapixels_per_s"]
        / summary["benchmark"]["rawpy_megapixels_per_s"])
    numbers = list(_numbers({k: v for k, v in summary.items() if k != "steps"}))
    assert len(numbers) > 40 and all(math.isfinite(n) for n in numbers)
    assert all(v is not None for v in conversion["quantized"].values())


def test_summary_table_names_every_section_and_the_report_folder(runs):
    text = open(os.path.join(runs["out"], quickstart.SUMMARY_MD)).read()
    assert text == quickstart.format_markdown(runs["summary"])
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| step | figure | value |"
    sections = {line.split("|")[1].strip() for line in table[2:]}
    assert sections == {"dataset", "training", "conversion", "evaluation", "benchmark",
                        "wall time"}
    assert "raw_samples (1 images)" in text and "synthetic_test (1 images)" in text
    assert "–" not in text  # every figure present
    assert f"Reports: `{runs['out']}/`" in text


def test_a_finished_folder_is_not_redone_and_other_settings_are_refused(runs):
    lines = []
    again = quickstart.run_quickstart(runs["settings"], echo=lines.append)
    assert {step["status"] for step in again["steps"].values()} == {"skipped"}
    assert again["benchmark"] == runs["summary"]["benchmark"]
    changed = dataclasses.replace(runs["settings"],
                                  overrides=TINY_OVERRIDES + ("train.epochs=2",))
    with pytest.raises(quickstart.QuickstartError, match="other settings"):
        quickstart.run_quickstart(changed, echo=lines.append)


def test_cli_runs_the_same_settings_from_its_flags_and_finds_the_folder_finished(runs):
    # The CLI on the finished folder: had any flag been dropped on the way to the settings
    # (overrides, limits, the raw samples), a step would run again or the folder be refused.
    result = subprocess.run(
        [sys.executable, "-m", "tools.quickstart", f"--output={runs['out']}",
         f"--raw_samples={runs['raw_samples']}", f"--synthetic_limit={SYNTHETIC_LIMIT}",
         f"--prepare_workers={PREPARE_WORKERS}", "--config=quickstart",
         "--bench_megapixels=0.02", "--bench_formats=jpg",
         *(f"--override={item}" for item in TINY_OVERRIDES)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("done already, skipped") == len(STEP_NAMES), result.stdout
    assert "| step | figure | value |" in result.stdout
    assert f"report folder: {runs['out']}" in result.stdout


def test_cli_refuses_a_bad_override_naming_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tools.quickstart",
                             f"--output={tmp_path}", "--override=train.epochs=two"],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "quickstart: override 'train.epochs=two'" in result.stderr
    assert not os.listdir(tmp_path)


def test_default_settings_are_the_real_quickstart_and_raw_samples_default_to_the_env(
        tmp_path, monkeypatch):
    settings = quickstart.Settings()
    assert settings.preset == config_lib.DEFAULT_PRESET == "quickstart"
    assert not settings.overrides
    assert settings.synthetic_limit is None and settings.eval_limit is None
    preset = config_lib.get_preset(settings.preset)
    assert preset.export.variants == ("float32", "int8")
    assert preset.export_shapes()[0] == (128, 128)  # scored: fits the 130 px quickstart tiles
    monkeypatch.setenv("DEEPISP_RAW_SAMPLES", str(tmp_path))
    assert quickstart.default_raw_samples() == str(tmp_path)
    monkeypatch.setenv("DEEPISP_RAW_SAMPLES", str(tmp_path / "absent"))
    assert quickstart.default_raw_samples() is None
