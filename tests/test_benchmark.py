"""`tools.benchmark`: every report section in file mode and model mode, on tiny inputs."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tflite_fixtures
from conftest import REPO
from deepisp_tf import plots
from deepisp_tf.runtime import bench
from deepisp_tf.raw import dng
from deepisp_tf.raw.io import read_raw
from deepisp_tf.runtime import frames, pipeline, profiling

STAGES = {"decode", "tile", "invoke", "blend", "finish"}
LATENCY_KEYS = {"p50", "p90", "p99", "mean"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench_models")
    return {"float": tflite_fixtures.write_model(folder, (64, 64), with_metadata=False,
                                                 name="tiny_float32.tflite"),
            "int8": tflite_fixtures.write_model(folder, (64, 64), int8="int8",
                                                with_metadata=False, name="tiny_int8.tflite"),
            "folder": str(folder)}


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench_raws")
    for index, pattern in enumerate(("RGGB", "BGGR")):
        dng.write_dng(folder / f"frame{index}.dng", frames.synthetic_mosaic(160, 224, seed=index),
                      pattern, 64, 4095, np.eye(3), (0.5, 1.0, 0.7))
    return str(folder)


def test_file_benchmark_report_has_every_section(models, raw_dir, tmp_path):
    settings = bench.Settings(model=models["float"], threads=1, workers=(1, 2), interpreters=2,
                              overlap=8)
    paths = bench.list_inputs(raw_dir)
    report = bench.benchmark_files(paths, settings, memory_megapixels=0.2)
    tiles = sum(len(pipeline.plan_record(read_raw(path), 64, 8).grid) for path in paths)
    modes = [(run["mode"], run["workers"]) for run in report["runs"]]
    assert modes == [("serial", 1), ("concurrent", 1), ("concurrent", 2), ("rawpy", 1),
                     ("rawpy", 2)]
    for run in report["runs"]:
        assert run["images"] == 2 and not run["failed"]
        assert run["megapixels"] == pytest.approx(2 * 160 * 224 / 1e6)
        assert run["images_per_s"] > 0 and run["megapixels_per_s"] > 0
        assert set(run["image_latency_ms"]) == LATENCY_KEYS
        assert 0 < run["cpu_utilization"] and run["peak_rss_mb"] > 0
        if run["mode"] == "rawpy":
            assert set(run["stage_seconds"]) == {"render"} and run["tiles"] == 0
        else:
            assert set(run["stage_seconds"]) == STAGES and run["tiles"] == tiles
            assert None not in run["tile_latency_ms"].values()
    summary = report["summary"]
    assert summary["speedup_concurrent_over_serial"] > 0
    assert summary["ratio_concurrent_to_rawpy"] > 0
    memory = report["memory"]
    assert memory["peak_rss_mb"] >= memory["baseline_rss_mb"] > 0
    assert memory["megapixels"] == pytest.approx(0.2, rel=0.05) and memory["tiles"] > 1
    assert report["model"]["tile_shape"] == [64, 64]
    assert report["reference_render"]["use_camera_wb"] is True

    paths = bench.write_report(report, str(tmp_path / "report"))
    stem = bench.report_stem(report)
    assert [os.path.basename(p) for p in paths] == list(bench.REPORT_FILES) + [
        f"{stem}.json", f"{stem}.md"]
    assert stem.startswith(f"files_{report['machine']['slug']}_tiny_float32_litert-")
    assert json.load(open(paths[0], encoding="utf-8"))["summary"] == json.loads(
        json.dumps(summary))
    markdown = open(paths[1], encoding="utf-8").read()
    for heading in ("## Summary", "## Throughput and latency", "## Time per stage",
                    "## Memory", "speed-up concurrent / serial", "ratio concurrent / rawpy"):
        assert heading in markdown
    plot = plots.plot_benchmark(report, str(tmp_path / "report"))
    assert os.path.basename(plot) == "throughput.png" and cv2.imread(plot).shape[2] == 3


def test_bad_file_is_listed_in_every_mode_without_stopping(models, raw_dir, tmp_path):
    broken = tmp_path / "broken.cr2"
    broken.write_bytes(b"\x00" * 1000)
    paths = bench.list_inputs(raw_dir) + [str(broken)]
    settings = bench.Settings(model=models["float"], threads=1, workers=(2,))
    report = bench.benchmark_files(paths, settings)
    for run in report["runs"]:
        assert run["images"] == 2 and len(run["failed"]) == 1 and str(broken) in run["failed"][0]
    assert "## Failed files" in bench.format_markdown(report)


def test_isolated_runs_count_their_decoder_processes_memory_and_rawpy_runs_do_not(
        models, raw_dir, tmp_path):
    settings = bench.Settings(model=models["float"], threads=1, workers=(1,), interpreters=1,
                              overlap=8, isolate=True)
    # Child processes other tests of this worker left running count in every row alike.
    others = profiling.children_rss_bytes() / 2**20
    report = bench.benchmark_files(bench.list_inputs(raw_dir), settings, memory_megapixels=0.2)
    children = {run["mode"]: run["children_peak_rss_mb"] - others for run in report["runs"]}
    assert report["memory"]["isolate"] and report["memory"]["decoder_peak_rss_mb"] > 10
    assert children["serial"] > 10 and children["concurrent"] > 10  # a Python + rawpy process
    assert children["rawpy"] < 5  # our decoders are not alive during rawpy's runs
    markdown = open(bench.write_report(report, str(tmp_path / "r"))[1], encoding="utf-8").read()
    serial_row = next(line for line in markdown.splitlines() if line.startswith("| serial |"))
    assert serial_row.rstrip(" |").rsplit("|", 1)[1].count(" + ") == 1  # "own + children" MB


def test_model_mode_times_every_model_and_reports_broken_ones(models, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("float", "int8"):
        os.symlink(models[name], folder / os.path.basename(models[name]))
    (folder / "broken.tflite").write_bytes(b"not a flatbuffer")
    report = bench.benchmark_models(bench.list_models(str(folder)),
                                    bench.Settings(model="", threads=1, interpreters=2),
                                    runs=3, frame_runs=1)
    rows = {row["model"]: row for row in report["models"]}
    assert "error" in rows["broken.tflite"]
    assert rows["tiny_float32.tflite"]["kind"] == "float32"
    assert rows["tiny_int8.tflite"]["kind"] == "int8"
    for name in ("tiny_float32.tflite", "tiny_int8.tflite"):
        row = rows[name]
        assert set(row["tile_latency_ms"]) == LATENCY_KEYS and row["frame"] == [1088, 1920]
        assert row["tiles_per_frame"] == len(pipeline.plan_record(
            frames.synthetic_record(1088, 1920), 64, pipeline.default_overlap(64)).grid)
        assert row["frame_latency_ms"]["p50"] > row["tile_latency_ms"]["p50"]
        assert row["engine_interpreters"] == 2  # the frame through the engine, as render() runs
        assert row["engine_frame_latency_ms"]["p50"] > row["tile_latency_ms"]["p50"]
    paths = bench.write_report(report, str(tmp_path / "report"))
    assert [os.path.basename(p) for p in paths][:2] == list(bench.MODEL_REPORT_FILES)
    markdown = open(paths[1], encoding="utf-8").read()
    assert "tiny_int8.tflite | int8" in markdown and "broken.tflite | error" in markdown
    assert "Full-HD frame p50 ms, 2 interpreters" in markdown


def test_cli_model_mode_writes_report_and_file_mode_needs_input(models, tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    completed = subprocess.run(
        [sys.executable, "-m", "tools.benchmark", f"--model={models['folder']}",
         f"--output={tmp_path / 'r'}", "--runs=2", "--frame_runs=1", "--threads=1"],
        cwd=REPO, capture_output=True, text=True, env=env, check=False)
    assert completed.returncode == 0, completed.stderr
    assert set(bench.MODEL_REPORT_FILES) | {"latency.png"} < set(os.listdir(tmp_path / "r"))
    missing = subprocess.run(
        [sys.executable, "-m", "tools.benchmark", f"--model={models['float']}",
         f"--output={tmp_path / 'r2'}"], cwd=REPO, capture_output=True, text=True, env=env,
        check=False)
    assert missing.returncode != 0 and "--input" in missing.stderr


def test_file_to_file_times_both_sides_alternated_and_repeats_inputs_to_the_megapixels(
        models, raw_dir):
    settings = bench.Settings(model=models["int8"], threads=1, workers=(1,))
    options = bench.FileOptions(in_memory=False, file_to_file=("jpg", "png"), rounds=2,
                                min_megapixels=0.2)  # 2 files of 0.036 MP -> 3 copies
    report = bench.benchmark_files(bench.list_inputs(raw_dir), settings, options=options)
    assert len(report["files"]) == 6 and report["runs"] == []
    runs = report["file_to_file"]["runs"]
    assert [(run["format"], run["mode"]) for run in runs] == [
        (fmt, mode) for fmt in ("jpg", "png") for _ in range(2)
        for mode in ("deepisp_tf", "rawpy+cv2.imwrite")]
    for run in runs:
        assert run["images"] == 6 and not run["failed"]
        assert run["megapixels"] == pytest.approx(6 * 160 * 224 / 1e6)
        assert run["bytes"] > 0 and run["mb_per_megapixel"] > 0
    png = [run for run in runs if run["format"] == "png"]
    jpg = [run for run in runs if run["format"] == "jpg"]
    assert min(run["bytes"] for run in png) > 3 * max(run["bytes"] for run in jpg)
    assert {"decode", "invoke", "encode", "write"} <= set(runs[0]["stage_ms_per_image"])
    summary = report["file_to_file"]["summary"]
    assert summary["png"]["ratio"] == pytest.approx(
        summary["png"]["ours_megapixels_per_s"] / summary["png"]["rawpy_megapixels_per_s"])
    assert "## File to file" in bench.format_markdown(report)


def test_prepare_inputs_adds_synthetic_dngs_and_repeats_whole_copies(raw_dir, tmp_path):
    paths = bench.list_inputs(raw_dir)
    options = bench.FileOptions(synthetic_megapixels=(0.05,), repeat_files=2)
    inputs = bench.prepare_inputs(paths, options, str(tmp_path))
    names = [os.path.basename(path) for path in inputs]
    assert names == [f"{copy:03d}_{name}" for copy in range(2)
                     for name in ("frame0.dng", "frame1.dng", "synthetic_0.05mp.dng")]
    synthetic = read_raw(inputs[2])
    assert synthetic.mosaic.size == pytest.approx(0.05e6, rel=0.02)
    assert bench.prepare_inputs(paths, bench.FileOptions(), str(tmp_path / "b")) == paths
