"""The benchmark reports: report.json, report.md and a plot, named by machine, precision and
runtime, written atomically."""

from __future__ import annotations

import os
from typing import Any

from deepisp_tf import atomic
from deepisp_tf.runtime.bench import encoders

REPORT_FILES = ("report.json", "report.md")
MODEL_REPORT_FILES = ("report.json", "report.md")
# The plots need Matplotlib (a training extra): tools.benchmark draws them with
# `deepisp_tf.plots.plot_benchmark` when it is installed.


def _ms(values: dict[str, float | None], key: str) -> str:
    value = values.get(key)
    return "–" if value is None else f"{value:.1f}"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _files_markdown(report: dict[str, Any]) -> list[str]:
    summary, model = report["summary"], report["model"]
    lines = [
        f"Model `{os.path.basename(model['model'])}`: tile {model['tile_shape']}, delegate "
        f"{model['delegate']}, {model['threads'] or 'default'} interpreter threads, "
        f"{model['delegated_ops']}/{model['ops']} ops delegated. "
        f"{len(report['files'])} files.", "",
        "## Summary", "",
        f"- serial: {_number(summary['serial_megapixels_per_s'])} MP/s",
        f"- concurrent (best, {summary['best_concurrent_workers']} preprocessing threads): "
        f"{_number(summary['concurrent_megapixels_per_s'])} MP/s",
        f"- rawpy reference render (best, {summary['best_rawpy_workers']} threads): "
        f"{_number(summary['rawpy_megapixels_per_s'])} MP/s",
        f"- speed-up concurrent / serial: **{_number(summary['speedup_concurrent_over_serial'])}"
        "x**",
        f"- ratio concurrent / rawpy: **{_number(summary['ratio_concurrent_to_rawpy'])}x** "
        "(> 1: faster than the reference render)", "",
        "## Throughput and latency", "",
        "| mode | threads | images | MP | s | images/s | MP/s | image p50/p90/p99 ms | "
        "tile p50/p90/p99 ms | CPU util | peak RSS MB (+ child processes) |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in report["runs"]:
        image, tile = run["image_latency_ms"], run["tile_latency_ms"]
        lines.append(
            f"| {run['mode']} | {run['workers']} | {run['images']} | {run['megapixels']:.1f} | "
            f"{run['seconds']:.2f} | {run['images_per_s']:.2f} | {run['megapixels_per_s']:.2f} |"
            f" {_ms(image, 'p50')} / {_ms(image, 'p90')} / {_ms(image, 'p99')} |"
            f" {_ms(tile, 'p50')} / {_ms(tile, 'p90')} / {_ms(tile, 'p99')} |"
            f" {run['cpu_utilization']:.0%} | {_rss(run)} |")
    stages = sorted({stage for run in report["runs"] for stage in run["stage_ms_per_image"]})
    lines += ["", "## Time per stage (ms per image, summed over threads)", "",
              "| mode | threads | " + " | ".join(stages) + " |",
              "|---|---|" + "---|" * len(stages)]
    for run in report["runs"]:
        cells = [_number(run["stage_ms_per_image"].get(stage), 1) for stage in stages]
        lines.append(f"| {run['mode']} | {run['workers']} | " + " | ".join(cells) + " |")
    failed = sorted({failure for run in report["runs"] for failure in run["failed"]})
    if failed:
        lines += ["", "## Failed files", ""] + [f"- {failure}" for failure in failed]
    if "file_to_file" in report:
        lines += _file_to_file_markdown(report["file_to_file"])
    if "encoders" in report:
        lines += ["", "## Encoders (one image, best of 3)", "",
                  encoders.format_markdown(report["encoders"]["rows"],
                                           f"the reference render of {report['encoders']['file']}")]
    if "memory" in report:
        memory = report["memory"]
        lines += ["", "## Memory (synthetic mosaic, fresh process)", "",
                  f"{memory['megapixels']:.1f} MP rendered in {memory['seconds']:.1f} s "
                  f"({memory['tiles']} tiles): peak RSS {memory['peak_rss_mb']:.0f} MB "
                  + (f"+ {memory['decoder_peak_rss_mb']:.0f} MB in the decoder process "
                     if memory.get("isolate") else "") +
                  f"(after loading the model: {memory['baseline_rss_mb']:.0f} MB; estimate of "
                  f"the image buffers: {memory['estimate_mb']:.0f} MB)."]
    return lines


def _models_markdown(report: dict[str, Any]) -> list[str]:
    engines = {row.get("engine_interpreters") for row in report["models"]} - {None}
    engine_title = f"Full-HD frame p50 ms, {max(engines)} interpreters" if engines else ""
    lines = ["| model | kind | IO | MB | delegate | delegated ops | zero weights | tile | "
             "tile p50/p90/p99 ms | tiles per frame | Full-HD frame p50 ms, one interpreter |"
             + (f" {engine_title} |" if engines else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if engines else "")]
    for row in report["models"]:
        if "error" in row:
            lines.append(f"| {row['model']} | error: {row['error']} |"
                         + " |" * (10 if engines else 9))
            continue
        engine_cell = ""
        if engines:  # "–" for a model the engine could not time (e.g. a GPU runner)
            engine_cell = f" {_ms(row.get('engine_frame_latency_ms') or {}, 'p50')} |"
        description, tile = row["description"], row["tile_latency_ms"]
        zeros = description["weights"]["zero_fraction"]
        lines.append(
            f"| {row['model']} | {row['kind']} | {description['io_dtypes']['bayer']} | "
            f"{row['bytes'] / 2**20:.2f} | "
            f"{description['delegate']} | {description['delegated_ops']}/{description['ops']} | "
            f"{'–' if zeros is None else f'{zeros:.0%}'} | "
            f"{description['tile_shape'][0]}x{description['tile_shape'][1]} | "
            f"{_ms(tile, 'p50')} / {_ms(tile, 'p90')} / {_ms(tile, 'p99')} | "
            f"{row['tiles_per_frame']} | {_ms(row['frame_latency_ms'], 'p50')} |"
            + engine_cell)
    rows = [row for row in report["models"] if row.get("frame_stage_ms")]
    stages = sorted({stage for row in rows for stage in row["frame_stage_ms"]})
    if rows:
        frame = rows[0]["frame"]
        lines += ["", f"Time per stage of one {frame[0]}x{frame[1]} frame (ms, `infer_record`, "
                  "one interpreter):", "", "| model | " + " | ".join(stages) + " |",
                  "|---|" + "---|" * len(stages)]
        for row in rows:
            lines.append(f"| {row['model']} | " + " | ".join(
                _number(row["frame_stage_ms"].get(stage), 1) for stage in stages) + " |")
    return lines


def _rss(run: dict[str, Any]) -> str:
    """Peak RSS of the process, "+ N" for its child processes (the isolated decoders)."""
    children = run.get("children_peak_rss_mb") or 0
    return f"{run['peak_rss_mb']:.0f}" + (f" + {children:.0f}" if children >= 0.5 else "")


def _choice_text(report: dict[str, Any]) -> str:
    choice = report.get("precision")
    if not choice:
        return ""
    text = f" -> **{choice['precision']}**"
    if choice.get("ms_per_mp"):
        timings = ", ".join(f"{name} {ms:.1f}" for name, ms in choice["ms_per_mp"].items())
        text += f" ({choice.get('source')}: model ms per MP {timings})"
    return text


def _file_to_file_markdown(section: dict[str, Any]) -> list[str]:
    lines = ["", "## File to file (RAW files -> written images)", "",
             f"Ours: `infer_files`, PNG mode {section['png_mode']}, {section['writers']} writer "
             "threads; rawpy: reference render + cv2.imwrite (OpenCV defaults; JPEG q95), one "
             "thread per CPU. Alternated, "
             f"{section['rounds']} round(s) per format; best of each side.", "",
             "| format | ours MP/s | rawpy MP/s | ratio | ours MB/MP | rawpy MB/MP |",
             "|---|---|---|---|---|---|"]
    for fmt, row in section["summary"].items():
        lines.append(f"| {fmt} | {_number(row['ours_megapixels_per_s'])} | "
                     f"{_number(row['rawpy_megapixels_per_s'])} | **{_number(row['ratio'])}x** "
                     f"| {_number(row['ours_mb_per_megapixel'])} | "
                     f"{_number(row['rawpy_mb_per_megapixel'])} |")
    lines += ["", "| round | side | format | images | MP | s | MP/s | MB | CPU util | "
              "peak RSS MB (+ child processes) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run in section["runs"]:
        lines.append(f"| {run['round']} | {run['mode']} | {run['format']} | {run['images']} | "
                     f"{run['megapixels']:.1f} | {run['seconds']:.2f} | "
                     f"{run['megapixels_per_s']:.2f} | {run['bytes'] / 1e6:.1f} | "
                     f"{run['cpu_utilization']:.0%} | {_rss(run)} |")
    stages = sorted({stage for run in section["runs"] for stage in run["stage_ms_per_image"]})
    if stages:
        lines += ["", "Ours, time per stage (ms per image, summed over threads):", "",
                  "| format | round | " + " | ".join(stages) + " |",
                  "|---|---|" + "---|" * len(stages)]
        for run in (run for run in section["runs"] if run["stage_ms_per_image"]):
            cells = [_number(run["stage_ms_per_image"].get(stage), 1) for stage in stages]
            lines.append(f"| {run['format']} | {run['round']} | " + " | ".join(cells) + " |")
    return lines


def format_markdown(report: dict[str, Any]) -> str:
    """Return report.md: settings, machine, then the tables of the file or model mode."""
    settings, host = report["settings"], report["machine"]
    title = "Runtime benchmark" if report["kind"] == "files" else "Model latency"
    lines = [f"# {title}", "",
             f"Machine: {host['host']}: **{host['processor']}**, {host['cpu_count']} CPUs, ISA "
             f"flags {', '.join(host.get('isa_flags', [])) or 'unknown'} (load average "
             f"{host['load_average'][0]:.1f} at the start), Python "
             f"{host['python']}, ai-edge-litert {host['ai_edge_litert']}, rawpy "
             f"{host['rawpy']} (LibRaw {host['libraw']}).",
             f"Settings: delegate {settings['delegate']}, threads per interpreter "
             f"{settings['threads'] or 'default'}"
             + (f", {settings.get('interpreters', 1)} interpreters (concurrent mode)"
                if report["kind"] == "files" else "")
             + f", overlap {settings['overlap'] or 'default'}, tile "
             f"{settings.get('tile') or 'native'}, precision {settings.get('precision')}"
             + _choice_text(report)
             + (f", best of {settings['repeats']} run(s) per mode." if report["kind"] == "files"
                else "."),
             ""]
    lines += _files_markdown(report) if report["kind"] == "files" else _models_markdown(report)
    return "\n".join(lines) + "\n"


def report_stem(report: dict[str, Any]) -> str:
    """Return the reports' name: <kind>_<machine>_<precision>_litert-<version>."""
    precision = (report.get("precision") or {}).get("precision") or "models"
    return (f"{report['kind']}_{report['machine'].get('slug', 'host')}_{precision}_litert-"
            f"{report['machine']['ai_edge_litert']}")


def write_report(report: dict[str, Any], output_dir: str) -> list[str]:
    """Write report.json and report.md into `output_dir`, and copies of the JSON and
    Markdown named by machine, precision and runtime (`report_stem`); return their paths."""
    os.makedirs(output_dir, exist_ok=True)
    names = REPORT_FILES if report["kind"] == "files" else MODEL_REPORT_FILES
    stem = report_stem(report)
    paths = [os.path.join(output_dir, name) for name in names]
    atomic.write_json(os.path.join(output_dir, f"{stem}.json"), report)
    atomic.write_text(os.path.join(output_dir, f"{stem}.md"), format_markdown(report))
    atomic.write_json(paths[0], report)
    atomic.write_text(paths[1], format_markdown(report))
    return paths + [os.path.join(output_dir, f"{stem}.{ext}") for ext in ("json", "md")]
