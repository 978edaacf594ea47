"""The size / quality / speed curve: points read from the tools' own outputs, timed on this
host, the Pareto front named, one report with its table."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from deepisp_tf import reports
from deepisp_tf.evaluation import curve
from deepisp_tf.runtime import models


def _eval_report(folder, margins_and_psnr):
    """An evaluate report.json with the fields the curve reads: per image ours/LINEAR PSNR."""
    images = [{"name": f"f{i}", "error": None,
               "scores": {"ours": {"psnr": ours, "ssim": 0.9},
                          "rawpy_linear": {"psnr": linear, "ssim": 0.8}}}
              for i, (ours, linear) in enumerate(margins_and_psnr)]
    mean = sum(o for o, _ in margins_and_psnr) / len(margins_and_psnr)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "report.json"), "w") as handle:
        json.dump({"images": images, "means": {"ours": {"psnr": mean, "ssim": 0.9}}}, handle)


@pytest.fixture()
def point(tmp_path):
    folder = tmp_path / "w035"
    (folder / "tflite").mkdir(parents=True)
    for precision in curve.PRECISIONS:
        os.symlink(models.default_model_path(precision=precision),
                   folder / "tflite" / f"{precision}_packed_256x256.tflite")
    _eval_report(folder / "eval_float32", [(41.0, 38.0), (36.0, 34.5)])
    _eval_report(folder / "eval_int8", [(40.0, 38.0), (35.0, 34.5)])
    (folder / "train").mkdir()
    (folder / "train" / "run.json").write_text(json.dumps({"params": 120000,
                                                           "kmac_per_pixel": 1.11}))
    return str(folder)


def test_load_point_reads_sizes_means_and_the_worst_files_margin_over_linear(point):
    loaded = curve.load_point("w035", point)
    assert loaded["params"] == 120000 and loaded["kmac_per_pixel"] == 1.11
    assert loaded["float32_psnr"] == pytest.approx(38.5)
    assert loaded["float32_worst_margin_db"] == pytest.approx(1.5)
    assert loaded["int8_worst_margin_db"] == pytest.approx(0.5)
    assert loaded["int8_kb"] == pytest.approx(
        os.path.getsize(models.default_model_path(precision="int8")) / 1e3)


def test_a_point_without_models_or_evaluations_is_refused_naming_the_folder(tmp_path):
    with pytest.raises(curve.CurvePointError, match=str(tmp_path)):
        curve.load_point("empty", str(tmp_path))


def test_pareto_keeps_only_points_no_other_beats_on_both_quality_and_speed():
    points = [{"name": "small", "float32_psnr": 39.0, "float32_ms_per_mp": 40.0},
              {"name": "mid", "float32_psnr": 40.0, "float32_ms_per_mp": 60.0},
              {"name": "slow_and_worse", "float32_psnr": 39.5, "float32_ms_per_mp": 80.0},
              {"name": "big", "float32_psnr": 40.5, "float32_ms_per_mp": 100.0}]
    assert curve.pareto(points) == ["small", "mid", "big"]


def test_tool_times_every_model_and_writes_the_table_it_prints(point, tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "tools.model_curve", f"--point=w035={point}",
                           f"--output={out}", "--runs=2", "--rounds=1"], cwd=REPO,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr
    document = json.load(open(out / "curve.json"))
    (row,) = document["points"]
    assert row["float32_ms_per_mp"] > 0 and row["int8_ms_per_mp"] > 0
    assert document["pareto"] == {"float32": ["w035"], "int8": ["w035"]}
    table = reports.tables_of(str(out / "curve.json"))["curve"]
    assert table.markdown() in done.stdout
    assert os.path.isfile(out / "curve.csv")
