"""The one report writer: JSON + Markdown + CSV from one table, atomic, regenerable from JSON."""

import csv
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO
from deepisp_tf import reports

COLUMNS = [reports.Column("name", "Name"), reports.Column("psnr", "PSNR (dB)", ".2f", True),
           reports.Column("ms", "Time (ms)", "auto", True), reports.Column("note", "Note")]
ROWS = [{"name": "a|b", "psnr": 41.234, "ms": 1.23456, "note": "line\nbreak"},
        {"name": "c", "psnr": math.inf, "ms": None}]


def test_table_markdown_formats_escapes_and_bolds_the_footer():
    table = reports.Table.of(COLUMNS, ROWS, footer={"name": "mean", "psnr": 40.0})
    lines = table.markdown().splitlines()
    assert lines[0] == "| Name | PSNR (dB) | Time (ms) | Note |"
    assert lines[1] == "|---|---:|---:|---|"
    assert lines[2] == "| a\\|b | 41.23 | 1.235 | line break |"
    assert lines[3] == f"| c | inf | {reports.MISSING} | {reports.MISSING} |"
    assert lines[4] == "| **mean** | **40.00** |  |  |"


def test_table_markdown_keys_choose_and_order_the_shown_columns():
    table = reports.Table.of(COLUMNS, ROWS, ["psnr", "name"])
    assert table.markdown().splitlines()[0] == "| PSNR (dB) | Name |"
    with pytest.raises(ValueError, match="not columns"):
        reports.Table.of(COLUMNS, ROWS, ["missing"])


def test_write_report_writes_strict_json_markdown_and_csv_that_regenerate(tmp_path):
    table = reports.Table.of(COLUMNS, ROWS, footer={"name": "mean"})
    paths = reports.write_report(str(tmp_path), "report", {"score": math.nan},
                                 "# title\n\n" + table.markdown(), {"scores": table})
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md", "report_scores.csv"]
    document = json.loads(open(paths["json"]).read())  # strict: NaN became a string
    assert document["score"] == "nan" and document["tables"]["scores"]["rows"][1]["psnr"] == "inf"
    rows = list(csv.DictReader(open(paths["csv:scores"], newline="")))
    assert [r["name"] for r in rows] == ["a|b", "c", "mean"] and rows[0]["ms"] == "1.23456"
    regenerated = reports.tables_of(paths["json"])["scores"].markdown()
    assert regenerated == table.markdown() and regenerated in open(paths["md"]).read()
    result = subprocess.run([sys.executable, "-m", "deepisp_tf.reports", paths["json"], "scores"],
                            cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0 and result.stdout.strip() == table.markdown()


def test_write_report_refuses_a_document_with_its_own_tables_key(tmp_path):
    table = reports.Table.of(COLUMNS, ROWS)
    with pytest.raises(ValueError, match="already has a 'tables' key"):
        reports.write_report(str(tmp_path), "r", {"tables": 1}, "", {"t": table})


def test_finite_makes_numpy_scalars_python_numbers_and_non_finite_floats_strings():
    np = pytest.importorskip("numpy")
    value = {"a": np.float32(1.5), "b": [np.int64(3), float("inf")], "c": (np.float64("nan"),),
             "d": np.array(2.0)}
    result = reports.finite(value)
    assert result == {"a": 1.5, "b": [3, "inf"], "c": ["nan"], "d": 2.0}
    assert [type(x) for x in (result["a"], result["b"][0], result["d"])] == [float, int, float]
    json.dumps(result, allow_nan=False)


def test_reports_imports_no_tensorflow_or_numpy():
    code = ("import sys, deepisp_tf.reports\n"
            "print(sorted({'tensorflow', 'numpy'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": REPO})
    assert result.stdout.strip() == "[]", result.stderr
