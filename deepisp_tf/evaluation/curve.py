"""The size / quality / speed curve: model widths side by side, so a user can pick one.

A point is a folder laid out by the commands of docs/model_curve.md:

    P/train/run.json                        tools.train's summary (params, kMAC/px), optional
    P/tflite/<precision>_packed_256x256.tflite   tools.convert_tflite's files
    P/eval_<precision>/report.json          tools.evaluate of that file on the held-out files

`load_point` reads one; `time_points` measures every point's `.tflite` files on this host,
alternated in rounds so a load change hits every model alike; `curve_table` puts them in one
`reports.Table`, and `pareto` names the points no other point beats on both quality and speed.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Sequence

from deepisp_tf import reports
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.profiling import latency_ms

PRECISIONS = ("float32", "int8")
TILE = 256


class CurvePointError(ValueError):
    """A point folder lacks what the curve needs."""


def _model_file(folder: str, precision: str) -> str | None:
    pattern = os.path.join(folder, "tflite", f"{precision}_*{TILE}x{TILE}.tflite")
    matches = sorted(glob.glob(pattern))
    return matches[0] if matches else None


def load_point(name: str, folder: str) -> dict[str, Any]:
    """Return one point: {"name", "params", "kmac_per_pixel", per precision "<p>_file",
    "<p>_kb", "<p>_psnr", "<p>_ssim", "<p>_worst_margin_db" (ours − rawpy LINEAR, the worst
    file), "files"}.

    Raises:
      CurvePointError: no model file or no evaluation of any precision (names the folder).
    """
    run = reports.read_json(os.path.join(folder, "train", "run.json")) or {}
    point: dict[str, Any] = {"name": name, "params": run.get("params"),
                             "kmac_per_pixel": run.get("kmac_per_pixel")}
    for precision in PRECISIONS:
        path = _model_file(folder, precision)
        evaluation = reports.read_json(os.path.join(folder, f"eval_{precision}", "report.json"))
        if path is None or evaluation is None:
            continue
        images = [image for image in evaluation["images"] if not image.get("error")]
        margins = [image["scores"]["ours"]["psnr"] - image["scores"]["rawpy_linear"]["psnr"]
                   for image in images]
        point.update({f"{precision}_file": path, f"{precision}_kb": os.path.getsize(path) / 1e3,
                      f"{precision}_psnr": evaluation["means"]["ours"]["psnr"],
                      f"{precision}_ssim": evaluation["means"]["ours"]["ssim"],
                      f"{precision}_worst_margin_db": min(margins) if margins else None,
                      "files": len(images)})
    if not any(f"{p}_file" in point for p in PRECISIONS):
        raise CurvePointError(f"{folder}: no tflite/<precision>_*{TILE}x{TILE}.tflite with an "
                              f"eval_<precision>/report.json beside it ({', '.join(PRECISIONS)})")
    return point


def time_points(points: Sequence[dict[str, Any]], threads: int, runs: int, rounds: int
                ) -> None:
    """Add "<p>_ms_per_mp" (median over rounds of LiteRT's median tile time, per output MP)."""
    runners = {(point["name"], p): Runner(point[f"{p}_file"], threads=threads)
               for point in points for p in PRECISIONS if f"{p}_file" in point}
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    for _ in range(rounds):
        for key, runner in runners.items():
            height, width = runner.tile_shape
            times[key].append(latency_ms(runner, runs) / (height * width / 1e6))
    for point in points:
        for p in PRECISIONS:
            if (point["name"], p) in times:
                values = sorted(times[(point["name"], p)])
                point[f"{p}_ms_per_mp"] = values[len(values) // 2]


def pareto(points: Sequence[dict[str, Any]], precision: str = "float32") -> list[str]:
    """Return the names of the points that no other point beats on both PSNR and ms/MP."""
    psnr, ms = f"{precision}_psnr", f"{precision}_ms_per_mp"
    scored = [p for p in points if psnr in p and ms in p]

    def dominates(other: dict[str, Any], point: dict[str, Any]) -> bool:
        better, faster = other[psnr] - point[psnr], point[ms] - other[ms]
        return better >= 0 and faster >= 0 and (better > 0 or faster > 0)

    return [p["name"] for p in scored if not any(dominates(o, p) for o in scored)]


def curve_table(points: Sequence[dict[str, Any]]) -> reports.Table:
    """One row per point: size, cost, held-out quality and speed per precision."""
    columns = [reports.Column("name", "model"),
               reports.Column("params", "params", "d", True),
               reports.Column("kmac_per_pixel", "kMAC / px", ".2f", True)]
    for p in PRECISIONS:
        columns += [reports.Column(f"{p}_kb", f"{p} kB", ".0f", True),
                    reports.Column(f"{p}_psnr", f"{p} PSNR", ".2f", True),
                    reports.Column(f"{p}_ssim", f"{p} SSIM", ".3f", True),
                    reports.Column(f"{p}_worst_margin_db", f"{p} worst − LINEAR dB", "+.2f",
                                   True),
                    reports.Column(f"{p}_ms_per_mp", f"{p} ms / MP", ".1f", True)]
    keys = [c.key for c in columns]
    return reports.Table.of(columns, [{k: point.get(k) for k in keys} for point in points])


def write_curve(points: Sequence[dict[str, Any]], output_dir: str, threads: int,
                cpu: dict[str, Any]) -> str:
    """Write OUT/curve.json, curve.md and curve.csv (`reports.write_report`); return the
    Markdown."""
    table = curve_table(points)
    front = {p: pareto(points, p) for p in PRECISIONS}
    document = {"points": [dict(point) for point in points], "pareto": front,
                "threads": threads, "cpu": cpu.get("model"), "tile": TILE}
    markdown = "\n".join([
        "# Size / quality / speed curve", "",
        f"Held-out files through the runtime (DESIGN §2.3 metrics); speed: LiteRT with {threads} "
        f"threads per {TILE}x{TILE} tile, per output MP, median of alternated rounds, on "
        f"{cpu.get('model')}.", "", table.markdown(), "",
        "Not beaten on both PSNR and speed: " + "; ".join(
            f"{p}: {', '.join(names) or 'none'}" for p, names in front.items()) + "."])
    reports.write_report(output_dir, "curve", document, markdown, {"curve": table})
    return markdown
