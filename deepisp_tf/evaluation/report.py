"""The evaluation report: set means, its tables and Markdown, written with `deepisp_tf.reports`."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from deepisp_tf import metrics, reports
from deepisp_tf.config import REFERENCE_RENDER_SETTINGS

REPORT_NAME = "report"
METHODS = {"ours": "ours", "rawpy_linear": "rawpy LINEAR", "classic": "classic"}
LINEAR_SETTINGS_NOTE = {**REFERENCE_RENDER_SETTINGS, "demosaic_algorithm": "LINEAR"}
CLASSIC_NOTE = ("deepisp_tf.raw.classic.render: OpenCV bilinear demosaic + the file's white "
                "balance + camera->sRGB matrix + BT.709 gamma, same geometry as the reference")
TIMED_NOTE = ("Seconds per image (reference and rawpy LINEAR include decoding; ours and "
              "classic start from the decoded mosaic):")


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


def _pair(score: dict[str, float] | None) -> str | None:
    return None if score is None else f"{score['psnr']:.2f} / {score['ssim']:.4f}"


def methods_of(report: dict[str, Any]) -> list[str]:
    """Return the methods the report scored, in METHODS order."""
    return [m for m in METHODS if m in report["means"]] or list(METHODS)


def scores_table(report: dict[str, Any]) -> reports.Table:
    """Return one row per scored image (PSNR, SSIM per method) and the mean row as footer.

    Markdown shows "PSNR / SSIM" per method; CSV and JSON keep the numbers apart.
    """
    methods = methods_of(report)
    columns = [reports.Column("image", "image"), reports.Column("camera", "camera"),
               reports.Column("size", "size")]
    for method in methods:
        columns += [reports.Column(f"{method}_psnr", f"{METHODS[method]} PSNR", ".2f", True),
                    reports.Column(f"{method}_ssim", f"{METHODS[method]} SSIM", ".4f", True),
                    reports.Column(method, f"{METHODS[method]} PSNR / SSIM", numeric=True)]

    def row_of(name: str, scores: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        row = {"image": name, **extra}
        for method in methods:
            score = scores.get(method)
            row[method] = _pair(score)
            row[f"{method}_psnr"] = None if score is None else score["psnr"]
            row[f"{method}_ssim"] = None if score is None else score["ssim"]
        return row

    scored = [r for r in report["images"] if r["error"] is None]
    rows = [row_of(r["name"], r["scores"], {
        "camera": r["camera"], "size": "{1}x{0}".format(*r["render_size"])}) for r in scored]
    footer = row_of(f"mean ({len(scored)} images)", report["means"], {})
    return reports.Table.of(columns, rows, ["image", "camera", "size", *methods], footer)


def seconds_table(report: dict[str, Any]) -> reports.Table:
    """Return one row per scored image: megapixels and seconds per method."""
    timed = ["reference", *methods_of(report)]
    columns = [reports.Column("image", "image"), reports.Column("megapixels", "MP", ".2f", True),
               *[reports.Column(m, METHODS.get(m, m), ".3f", True) for m in timed]]
    rows = [{"image": r["name"], "megapixels": r["megapixels"], **r["seconds"]}
            for r in report["images"] if r["error"] is None]
    return reports.Table.of(columns, rows)


def format_markdown(report: dict[str, Any]) -> str:
    """Return report.md: settings, the per-image table with the mean row, timings, failures."""
    model, inputs, rows = report["model"], report["input"], report["images"]
    lines = ["# Evaluation report", "",
             f"- model: `{model.get('path') or model.get('model')}` ({model['kind']}, tile "
             f"{report['tile']}, overlap {report['overlap']})",
             f"- input: `{inputs['path']}`: {inputs['note']}",
             f"- ground truth: {report['ground_truth']}",
             f"- metrics: {report['protocol']['description']}",
             *[f"- {METHODS[m]}: {report['baselines'][m]}" for m in methods_of(report)
               if m != "ours"],
             "", scores_table(report).markdown(),
             "", TIMED_NOTE, "", seconds_table(report).markdown()]
    failed = [row for row in rows if row["error"] is not None]
    if failed:
        lines += ["", f"Failed ({len(failed)}):", ""]
        lines += [f"- {row['name']}: {row['error']}" for row in failed]
    return "\n".join(lines) + "\n"


def write_report(output: str, report: dict[str, Any]) -> dict[str, str]:
    """Write report.json, report.md, report_scores.csv and report_seconds.csv, atomically."""
    return reports.write_report(output, REPORT_NAME, report, format_markdown(report),
                                {"scores": scores_table(report),
                                 "seconds": seconds_table(report)})


def report_path(output: str) -> str:
    """Return the report.json of an evaluation folder."""
    return os.path.join(output, f"{REPORT_NAME}.json")
