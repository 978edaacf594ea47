"""Write the benchmark rows as results.csv, results.json and results.md, atomically.

One table (`results_table`) feeds all three through `deepisp_tf.reports`, the writer every tool
uses; its columns travel in results.json, so the Markdown table regenerates from it. Each file
is written to a temporary file in the output folder, then renamed over the old one, so a
reader (or a run killed half-way) never sees a half-written report. The reports are rewritten
after every row, so an interrupted phone session keeps the rows measured so far.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from android_bench.matrix import ROW_FIELDS, Configuration, Row
from deepisp_tf import reports
from deepisp_tf.atomic import write_text

RESULTS_NAME = "results"
CSV_NAME, JSON_NAME, MARKDOWN_NAME = (f"{RESULTS_NAME}.{ext}" for ext in ("csv", "json", "md"))
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
    write_text(os.path.join(log_dir, f"{stem}__{config.name}.log"), f"$ {command}\n{output}")


def results_table(rows: Sequence[Row]) -> reports.Table:
    """Return the rows as one table: every Row field (CSV, JSON), the main ones in Markdown."""
    titles = dict((field, name) for name, field in _MARKDOWN_COLUMNS)
    text_fields = ("model", "label", "delegation", "status")
    columns = [reports.Column(field, titles.get(field, field),
                              "" if field in text_fields else "auto", field not in text_fields)
               for field in ROW_FIELDS]
    return reports.Table.of(columns, [dataclasses.asdict(row) for row in rows],
                            [field for _, field in _MARKDOWN_COLUMNS])


def to_csv(rows: Sequence[Row]) -> str:
    """Return the rows as CSV text with a header of every Row field."""
    return results_table(rows).csv()


def format_number(value: float | int | None) -> str:
    """Format a time or size for a table: 3 significant decimals below 10, fewer above."""
    return reports.format_value(value, "auto")


def _markdown_table(rows: Sequence[Row]) -> str:
    """Return the Markdown table; an error row's status reads "error: <reason>"."""
    shown = [{**dataclasses.asdict(row),
              "status": "ok" if row.status == "ok" else f"error: {row.error}"} for row in rows]
    table = results_table(rows)
    return dataclasses.replace(table, rows=tuple(shown)).markdown()


def to_markdown(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    """Return a Markdown report: a title naming the device, the settings, the table, notes."""
    title = meta.get("title", "benchmark results")
    lines = [f"# {title}", ""]
    for key in ("runner", "device", "runs", "date"):
        if meta.get(key):
            lines.append(f"- {key}: {meta[key]}")
    lines += ["", _markdown_table(rows)]
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
    written = reports.write_report(output_dir, RESULTS_NAME,
                                   {"meta": meta, "rows": [dataclasses.asdict(r) for r in rows]},
                                   to_markdown(rows, meta), {RESULTS_NAME: results_table(rows)})
    return {"csv": written["csv"], "json": written["json"], "md": written["md"]}
