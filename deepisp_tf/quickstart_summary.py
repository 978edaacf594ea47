"""The quickstart's one summary table: each step's headline figure, from the summary document.

`deepisp_tf.quickstart.build_summary` collects the document from the steps' own reports; this
module only renders it (Markdown through `reports.Table`), so the table can be rebuilt from
O/summary.json without running anything.
"""

from __future__ import annotations

import math
from typing import Any

from deepisp_tf import evaluation as evaluate
from deepisp_tf import reports
from deepisp_tf.data import prepare


def _num(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec) + unit


def _kb(size: int | None) -> str:
    return _num(size and size / 1e3, ".0f", " kB")


def format_markdown(summary: dict[str, Any]) -> str:
    """Return the one summary table (Markdown) and where the reports are."""
    data, run, conv, bench_ = (summary[k] for k in ("dataset", "training", "conversion",
                                                    "benchmark"))
    deployed, float32 = conv["quantized"], conv["float32"]
    variant, shape = deployed["variant"], "x".join(map(str, conv["scored_shape"]))
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
         f"{_kb(float32['size_bytes'])} / {_kb(deployed['size_bytes'])} "
         f"({_num(deployed['reduction_pct'], '.0f', '%')} smaller)"),
        ("conversion", f"val PSNR through LiteRT ({conv['tiles']} tiles, {shape})",
         f"float32 {_num(float32['psnr'], '.2f', ' dB')}, {variant} "
         f"{_num(deployed['psnr'], '.2f', ' dB')} ({variant} drop vs float32 "
         f"{_num(deployed['drop_vs_float32_db'], '+.2f', ' dB')})"),
        ("conversion", "recommended", conv["recommended"] or "none within the quality budget")]
    for name, result in summary["evaluation"].items():
        means = result["means"]
        scores = ", ".join(f"{evaluate.METHODS[m]}{' ' + variant if m == 'ours' else ''} "
                           f"{_num(means[m]['psnr'])} / {_num(means[m]['ssim'], '.4f')}"
                           for m in evaluate.METHODS if m in means)
        rows.append(("evaluation", f"{name} ({means['ours']['images']} images) PSNR / SSIM",
                     scores))
    where = (f"{bench_['files']} test DNGs as {bench_['runs_files']} files, "
             f"{_num(bench_['megapixels'], '.1f')} RAW MP, {bench_['cpu']}")
    rows.append(("benchmark", f"in memory, MP/s ({where})",
                 f"concurrent {_num(bench_['concurrent_megapixels_per_s'])} vs rawpy render "
                 f"{_num(bench_['rawpy_megapixels_per_s'])}: "
                 f"{_num(bench_['ratio_concurrent_to_rawpy'])}x "
                 f"(serial {_num(bench_['serial_megapixels_per_s'])})"))
    for fmt, side in bench_["file_to_file"].items():
        rows.append(("benchmark", f"file to file {fmt}, MP/s",
                     f"ours {_num(side['ours_megapixels_per_s'])} vs rawpy + cv2.imwrite "
                     f"{_num(side['rawpy_megapixels_per_s'])}: {_num(side['ratio'])}x "
                     f"({_num(side['ours_mb_per_megapixel'])} vs "
                     f"{_num(side['rawpy_mb_per_megapixel'])} MB/MP)"))
    for name, step in summary["steps"].items():
        rows.append(("wall time", name, f"{_num(step['seconds'], '.1f', ' s')}"
                     + (" (earlier run, skipped now)" if step["status"] == "skipped" else "")))
    wall, host = summary["wall_seconds"], summary["machine"]
    rows.append(("wall time", "all steps / this run", f"{wall['steps_total']:.0f} s / "
                 f"{wall['this_run']:.0f} s (load {host['load_average_start'][0]:.1f} -> "
                 f"{host['load_average_end'][0]:.1f} on {host['cpu_count']} CPUs)"))
    table = reports.Table.of(
        [reports.Column("step"), reports.Column("figure"), reports.Column("value")],
        [{"step": a, "figure": b, "value": c} for a, b, c in rows])
    lines = [f"# Quickstart: `{summary['preset']}`", "", table.markdown(), "",
             f"Reports: `{summary['output']}/` — data/manifest.json, train/run.json, "
             "tflite/report.md, " + ", ".join(f"eval/{n}/report.md" for n in
                                              summary["evaluation"]) + ", bench/report.md."]
    return "\n".join(lines) + "\n"
