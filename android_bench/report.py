"""Write the benchmark rows as results.csv, results.json and results.md, atomically.

Each file is written to a temporary file in the output folder, then renamed over the old one, so a
reader (or a run killed half-way) never sees a half-written report. The reports are rewritten
after every row, so an interrupted phone session keeps the rows measured so far.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from typing import Any, Sequence

from android_bench.matrix import ROW_FIELDS, Configuration, Row
from deepisp_tf.atomic import write_text

CSV_NAME, JSON_NAME, MARKDOWN_NAME = "results.csv", "results.json", "results.md"
LOG_DIR = "logs"
_MARKDOWN_COLUMNS = (
    ("Model", "model"), ("Configuration", "label"), ("Inference avg (ms)", "inference_avg_ms"),
    ("Std (ms)", "inference_std_ms"), ("Min (ms)", "inference_min_ms"),
    ("Init (ms)", "init_ms"), ("First (ms)", "first_inference_ms"),
    ("Peak memory (MB)", "peak_memory_mb"), ("Delegation", "delegation"), ("Status", "status"))


def write_log(log_dir: str | None, model: str, config: Configuration, command: str,
              output: str) -> None:
    """Keep one run's command and full output as <log_dir>/<model stem>__<config>.log."""
    if log_dir is None:
        return
    stem = os.path.splitext(os.path.basename(model))[0]
    write_text(os.path.join(log_dir, f"{stem}__{config.name}.log"),
                      f"$ {command}\n{output}")


def to_csv(rows: Sequence[Row]) -> str:
    """Return the rows as CSV text with a header of every Row field."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value
                         for key, value in dataclasses.asdict(row).items()})
    return buffer.getvalue()


def to_json(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    """Return {"meta": meta, "rows": [...]} as indented JSON text."""
    return json.dumps({"meta": meta, "rows": [dataclasses.asdict(row) for row in rows]},
                      indent=2) + "\n"


def format_number(value: float | int | None) -> str:
    """Format a time or size for a table: 3 significant decimals below 10, fewer above."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    if abs(value) < 10:
        return f"{value:.3f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"


def _cell(row: Row, field: str) -> str:
    value = getattr(row, field)
    if field == "status":
        value = "ok" if row.status == "ok" else f"error: {row.error}"
    elif not isinstance(value, str):
        value = format_number(value)
    return (value or "–").replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    """Return a Markdown report: a title naming the device, the settings, the table, notes."""
    title = meta.get("title", "benchmark results")
    lines = [f"# {title}", ""]
    for key in ("runner", "device", "runs", "date"):
        if meta.get(key):
            lines.append(f"- {key}: {meta[key]}")
    lines += ["", "| " + " | ".join(name for name, _ in _MARKDOWN_COLUMNS) + " |",
              "|" + "|".join("---" if field in ("model", "label", "delegation", "status")
                             else "---:" for _, field in _MARKDOWN_COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(row, field) for _, field in _MARKDOWN_COLUMNS) + " |"
              for row in rows]
    notes = {row.label: row.note for row in rows if row.note}
    if notes:
        lines += ["", "Notes:", ""] + [f"- {label}: {note}" for label, note in notes.items()]
    return "\n".join(lines) + "\n"


def write_reports(output_dir: str, rows: Sequence[Row], meta: dict[str, Any]) -> dict[str, str]:
    """Write results.csv, results.json and results.md into `output_dir` atomically.

    Args:
      output_dir: the report folder (created if missing).
      rows: the rows so far.
      meta: run description (title, runner, device, runs, date, …) stored in JSON and Markdown.

    Returns:
      {"csv": path, "json": path, "md": path}.
    """
    paths = {"csv": os.path.join(output_dir, CSV_NAME),
             "json": os.path.join(output_dir, JSON_NAME),
             "md": os.path.join(output_dir, MARKDOWN_NAME)}
    write_text(paths["csv"], to_csv(rows))
    write_text(paths["json"], to_json(rows, meta))
    write_text(paths["md"], to_markdown(rows, meta))
    return paths
