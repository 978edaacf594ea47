"""tools.evaluate: reports with both baselines, grids, error rows, Keras and .tflite models, ZRR."""

import ast
import csv
import json
import math
import os
import re

import cv2
import numpy as np
import pytest

import tflite_fixtures
from conftest import REPO, sample
from deepisp_tf import evaluation as evaluate
from deepisp_tf import metrics, reports
from deepisp_tf.config import CAMERA_XYZ_MATRICES, DataConfig, ExperimentConfig, ModelConfig
from deepisp_tf.data import zrr
from deepisp_tf.raw import cfa, classic, dng
from deepisp_tf.raw.io import read_raw
from deepisp_tf.runtime import Runner, infer_record
from deepisp_tf.runtime.pipeline import default_overlap

TINY = ExperimentConfig(name="tiny", description="test model", command="none",
                        model=ModelConfig(encoder_stages=2, decoder_filters=(16, 8),
                                          stem_filters=8, metadata_units=8))


def _write_dng(path, pattern, shape, seed):
    """A smooth colour scene through `pattern`, 12-bit, with a real camera matrix."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    phase = rng.uniform(0, 3, 3)
    scene = 0.45 + 0.35 * np.sin(5 * xx[..., None] + 3 * yy[..., None] + phase)
    mosaic = cfa.mosaic((64 + scene * 3500).astype(np.uint16), pattern)
    xyz_to_cam = np.reshape(CAMERA_XYZ_MATRICES["sony_a7"], (3, 3))
    return dng.write_dng(path, mosaic, pattern, 64, 4095, xyz_to_cam, (0.5, 1.0, 0.6))


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    """Two small DNGs (GRBG, RGGB) and, sorted first, a file that is not a RAW file."""
    folder = tmp_path_factory.mktemp("raw")
    (folder / "a_broken.dng").write_text("not a raw file")
    _write_dng(folder / "b_grbg.dng", "GRBG", (96, 128), 0)
    _write_dng(folder / "c_rggb.dng", "RGGB", (80, 112), 1)
    return str(folder)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An untrained tiny model saved at a 32-pixel tile, as tools.train saves a workdir."""
    from deepisp_tf.model import build_model  # pylint: disable=import-outside-toplevel
    from deepisp_tf.model.io import save_trained  # pylint: disable=import-outside-toplevel
    folder = tmp_path_factory.mktemp("workdir")
    save_trained(build_model(TINY.model, 32), TINY, folder)
    return str(folder)


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory):
    return tflite_fixtures.write_model(tmp_path_factory.mktemp("tflite"), (64, 64))


@pytest.fixture(scope="module")
def workdir_report(workdir, raw_dir, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("report"))
    return output, evaluate.evaluate(workdir, raw_dir, output, tile=64)


def test_workdir_report_scores_ours_and_both_baselines_with_finite_numbers(workdir_report):
    output, report = workdir_report
    written = json.load(open(os.path.join(output, "report.json")))
    assert set(written.pop("tables")) == {"scores", "seconds"}
    assert written == report
    assert report["complete"] and report["model"]["kind"] == "keras_workdir"
    assert report["tile"] == 64 and report["protocol"]["name"] == "design_2.3"
    assert report["reference_render"]["settings"]["use_camera_wb"] is True
    rows = [row for row in report["images"] if row["error"] is None]
    assert [row["name"] for row in rows] == ["b_grbg.dng", "c_rggb.dng"]
    for row in rows:
        assert set(row["scores"]) == {"ours", "rawpy_linear", "classic"}
        assert all(math.isfinite(s["psnr"]) and -1 <= s["ssim"] <= 1
                   for s in row["scores"].values())
        assert row["scores"]["rawpy_linear"]["psnr"] > 40  # smooth scene: bilinear is near AHD
        assert set(row["seconds"]) == {"reference", "ours", "rawpy_linear", "classic"}
    for method in ("ours", "rawpy_linear", "classic"):
        expected = np.mean([row["scores"][method]["psnr"] for row in rows])
        assert report["means"][method]["psnr"] == pytest.approx(expected)
        assert report["means"][method]["images"] == 2


def test_report_md_has_the_table_with_a_mean_row(workdir_report):
    output, report = workdir_report
    text = open(os.path.join(output, "report.md")).read()
    assert "| image | camera | size | ours PSNR / SSIM | rawpy LINEAR PSNR / SSIM | " \
           "classic PSNR / SSIM |" in text
    assert "| b_grbg.dng | deepisp_tf synthetic | 128x96 |" in text
    mean = report["means"]["rawpy_linear"]
    assert f"**{mean['psnr']:.2f} / {mean['ssim']:.4f}**" in text
    assert "**mean (2 images)**" in text and "a_broken.dng: " in text


def test_report_tables_regenerate_the_markdown_and_csv_from_report_json(workdir_report):
    output, report = workdir_report
    tables = reports.tables_of(os.path.join(output, "report.json"))
    text = open(os.path.join(output, "report.md")).read()
    assert tables["scores"].markdown() in text and tables["seconds"].markdown() in text
    with open(os.path.join(output, "report_scores.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image"] for row in rows] == ["b_grbg.dng", "c_rggb.dng", "mean (2 images)"]
    assert float(rows[0]["ours_psnr"]) == pytest.approx(
        report["images"][1]["scores"]["ours"]["psnr"])
    assert float(rows[-1]["classic_ssim"]) == pytest.approx(report["means"]["classic"]["ssim"])


def test_grids_have_five_cells_and_show_the_reference(workdir_report, raw_dir):
    output, report = workdir_report
    assert sorted(os.listdir(os.path.join(output, "grids"))) == [
        "0001_b_grbg_dng.png", "0002_c_rggb_dng.png"]  # none for the bad file, no temporaries
    row = report["images"][1]
    grid = cv2.imread(os.path.join(output, row["grid"]))[..., ::-1]
    height, width = evaluate.cell_size(tuple(row["render_size"]))
    assert grid.shape == (evaluate.GRID_HEADER + height,
                          5 * width + 4 * evaluate.GRID_GAP, 3)
    reference = read_raw(os.path.join(raw_dir, "b_grbg.dng"), with_reference=True)[1]
    x = 3 * (width + evaluate.GRID_GAP)
    np.testing.assert_array_equal(grid[evaluate.GRID_HEADER:, x:x + width],
                                  evaluate.downscale(reference, (height, width)))


def test_bad_file_gives_an_error_row_and_the_batch_continues(workdir_report):
    _, report = workdir_report
    first = report["images"][0]
    assert first["name"] == "a_broken.dng" and "a_broken.dng" in first["error"]
    assert "scores" not in first
    assert [row["error"] for row in report["images"][1:]] == [None, None]


def test_keras_runner_matches_the_litert_runner_on_a_tile(tflite_model):
    keras_runner = evaluate.KerasRunner(tflite_fixtures.build_keras_model((64, 64)), 64)
    litert = Runner(tflite_model)
    rng = np.random.default_rng(0)
    tile, meta = rng.uniform(0, 1, (64, 64)).astype(np.float32), rng.uniform(0, 2, 12)
    assert keras_runner.has_metadata and keras_runner.tile_shape == litert.tile_shape
    np.testing.assert_allclose(keras_runner.run(tile, meta), litert.run(tile, meta), atol=1e-5)


def test_workdir_model_is_rebuilt_at_the_requested_tile(workdir):
    from deepisp_tf.model import build_model  # pylint: disable=import-outside-toplevel
    from deepisp_tf.model.io import load_trained  # pylint: disable=import-outside-toplevel
    runner, info = evaluate.open_keras(workdir, 64)
    saved, _ = load_trained(workdir)
    assert tuple(saved.inputs[0].shape[1:3]) == (32, 32) and runner.tile_shape == (64, 64)
    dynamic = build_model(TINY.model)
    dynamic.set_weights(saved.get_weights())
    rng = np.random.default_rng(1)
    tile = rng.uniform(0, 1, (64, 64)).astype(np.float32)
    expected = dynamic(tile[None, :, :, None])[0]
    np.testing.assert_allclose(runner.run(tile), expected, atol=1e-5)
    assert info["params"] > 0
    with pytest.raises(ValueError, match="multiple of 8"):
        evaluate.open_keras(workdir, 60)


def test_tflite_model_evaluates_with_the_limit_and_reports_the_real_score(
        tflite_model, raw_dir, tmp_path):
    report = evaluate.evaluate(tflite_model, raw_dir, str(tmp_path), limit=2)
    assert report["model"]["kind"] == "tflite" and report["tile"] == 64
    assert report["overlap"] == default_overlap(64) == 4  # the runtime's default: tile / 16
    assert [row["name"] for row in report["images"]] == ["a_broken.dng", "b_grbg.dng"]
    record, reference = read_raw(os.path.join(raw_dir, "b_grbg.dng"), with_reference=True)
    ours = infer_record(record, Runner(tflite_model))
    assert report["images"][1]["scores"]["ours"]["psnr"] == pytest.approx(
        metrics.psnr(reference, ours), abs=1e-9)
    assert report["means"]["classic"]["images"] == 1


def test_prepared_dataset_evaluates_its_test_split_else_val(raw_dir, tmp_path):
    paths = [os.path.join(raw_dir, n) for n in ("a_broken.dng", "b_grbg.dng", "c_rggb.dng")]
    files = [{"name": "a", "path": paths[0], "split": "test", "status": "error"},
             {"name": "b", "path": paths[1], "split": "val", "status": "ok"},
             {"name": "c", "path": paths[2], "split": "train", "status": "ok"}]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"source": "raw_dir", "files": files}))
    fallback = evaluate.resolve_input(str(tmp_path))
    assert (fallback.kind, fallback.split, fallback.files) == ("dataset", "val", [paths[1]])
    assert "test split is empty" in fallback.note
    files[0]["status"] = "ok"
    manifest.write_text(json.dumps({"source": "raw_dir", "files": files}))
    assert evaluate.resolve_input(str(tmp_path)).files == [paths[0]]


def test_zrr_dataset_is_scored_with_pynet_protocol_against_the_jpeg(tflite_model, tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        os.makedirs(tmp_path / "zrr" / split / "huawei_raw")
        os.makedirs(tmp_path / "zrr" / split / "canon")
        mosaic = rng.integers(0, 1024, (zrr.PATCH_SIZE, zrr.PATCH_SIZE)).astype(np.uint16)
        cv2.imwrite(str(tmp_path / "zrr" / split / "huawei_raw" / "0.png"), mosaic)
        jpeg = np.full((zrr.PATCH_SIZE, zrr.PATCH_SIZE, 3), (60, 120, 180), np.uint8)
        cv2.imwrite(str(tmp_path / "zrr" / split / "canon" / "0.jpg"), jpeg)
    config = DataConfig(tile_size=448, tile_stride=448, crop_size=256, val_fraction=0,
                        test_fraction=0)
    zrr.prepare(str(tmp_path / "zrr"), str(tmp_path / "data"), config, progress=False)
    report = evaluate.evaluate(tflite_model, str(tmp_path / "data"), str(tmp_path / "out"))
    assert report["input"]["kind"] == "zrr" and report["protocol"]["name"] == "pynet_zrr"
    (row,) = report["images"]
    assert row["error"] is None and set(row["scores"]) == {"ours", "classic"}
    assert "Canon" in report["ground_truth"]
    assert "PyNET" in open(tmp_path / "out" / "report.md").read()
    target = cv2.imread(str(tmp_path / "zrr" / "test" / "canon" / "0.jpg"))[..., ::-1]
    record = next(evaluate.iter_items(evaluate.resolve_input(str(tmp_path / "data")))).load()[0]
    expected = metrics.psnr(target.astype(np.uint16) * 257, classic.render(record), border=0)
    assert row["scores"]["classic"]["psnr"] == pytest.approx(expected, abs=1e-9)


def test_real_file_rawpy_linear_baseline_is_in_a_plausible_range(tflite_model, tmp_path):
    path = sample("raw_Image_04.qtk")
    os.makedirs(tmp_path / "in")
    os.symlink(path, tmp_path / "in" / os.path.basename(path))
    report = evaluate.evaluate(tflite_model, str(tmp_path / "in"), str(tmp_path / "out"))
    scores = report["images"][0]["scores"]
    assert scores["rawpy_linear"]["psnr"] > 30 and scores["rawpy_linear"]["ssim"] > 0.9
    assert scores["classic"]["psnr"] > 30 and scores["classic"]["ssim"] > 0.9


def test_without_model_uses_the_shipped_one_or_says_none_ships(tmp_path, monkeypatch):
    from deepisp_tf.runtime import models  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(models, "DEFAULT_MODEL_DIR", str(tmp_path))
    with pytest.raises(models.NoDefaultModelError, match="no trained default model.*--model"):
        evaluate.open_model(None)


def test_cell_size_keeps_grids_small():
    height, width = evaluate.cell_size((6000, 9000))
    assert 5 * width + 4 * evaluate.GRID_GAP <= evaluate.GRID_MAX_WIDTH
    assert abs(height - 6000 * width / 9000) <= 1
    assert evaluate.cell_size((9000, 6000))[0] <= evaluate.GRID_MAX_HEIGHT
    assert evaluate.cell_size((40, 60)) == (40, 60)


def _flag_help(path, name):
    """Return the constant text of flag `name`'s help in a tool's source (no import: absl flags
    of several tools cannot live in one process)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and node.args[0].value == name:
            return "".join(part.value for part in ast.walk(node.args[2])
                           if isinstance(part, ast.Constant) and isinstance(part.value, str))
    raise AssertionError(f"{path} defines no flag {name!r}")


def test_evaluate_tool_documents_the_overlap_default_the_code_uses():
    text = _flag_help(os.path.join(REPO, "tools", "evaluate.py"), "overlap")
    divisor = int(re.search(r"tile / (\d+)", text).group(1))
    for tile in (32, 64, 130, 256, 448, 512):
        assert default_overlap(tile) == max(2, tile // divisor // 2 * 2), tile
    assert "tile / 16" in evaluate.evaluate.__doc__
