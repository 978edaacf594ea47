"""The export report: report.json / report.md writers, the terminal summary, and its readers.

Readers (`read_report`, `is_current`, `variant_entry`, `headline`) are how other steps (the
quickstart) use a report, so its schema is known here only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from deepisp_tf import reports
from deepisp_tf.config import ExportConfig

REPORT_STEM = "report"
REPORT_JSON, REPORT_MD = f"{REPORT_STEM}.json", f"{REPORT_STEM}.md"


VARIANTS_TABLE = "variants"


def write_report(output_dir: str, report: dict[str, Any]) -> None:
    """Write report.json, report.md and report_variants.csv atomically (`reports.write_report`).

    The JSON also carries the variants table, so `python -m deepisp_tf.reports
    OUT/report.json variants` reprints it.
    """
    table = variants_table(report)
    reports.write_report(output_dir, REPORT_STEM, reports.finite(report),
                         report_markdown(report, table), {VARIANTS_TABLE: table})


def _yes_no(value: Any) -> str | None:
    return None if value is None else ("yes" if value else "no")


def variants_table(report: dict[str, Any]) -> reports.Table:
    """One row per converted file: size, gzip, reductions, sparsity, quality, parity, latency,
    delegation and the GPU / NNAPI checks."""
    columns = [
        reports.Column("file", "file"),
        reports.Column("size_kb", "size kB", ".1f", True),
        reports.Column("gzip_kb", "gzip kB", ".1f", True),
        reports.Column("reduction_pct", "vs float32 %", ".1f", True),
        reports.Column("gzip_reduction_pct", "gzip vs float32 %", ".1f", True),
        reports.Column("sparsity", "sparsity", ".3f", True),
        reports.Column("psnr", "PSNR", ".2f", True),
        reports.Column("ssim", "SSIM", ".4f", True),
        reports.Column("drop_db", "drop dB", "+.2f", True),
        reports.Column("parity_db", "parity dB", ".1f", True),
        reports.Column("parity_min_db", "parity min dB", ".0f", True),
        reports.Column("latency_ms", "ms / invoke", ".2f", True),
        reports.Column("xnnpack", "XNNPACK all ops"),
        reports.Column("gpu", "GPU"),
        reports.Column("nnapi", "NNAPI"),
    ]
    rows = [{
        "file": f"`{e['file']}`", "size_kb": e["size_bytes"] / 1e3,
        "gzip_kb": e["gzip_bytes"] / 1e3,
        "reduction_pct": e.get("reduction_vs_float32_pct"),
        "gzip_reduction_pct": e.get("gzip_reduction_vs_float32_pct"),
        "sparsity": e["weight_sparsity"], "psnr": e.get("psnr"), "ssim": e.get("ssim"),
        "drop_db": e.get("psnr_drop_db"), "parity_db": e.get("parity_psnr_db"),
        "parity_min_db": e.get("parity_min_psnr_db"), "latency_ms": e["latency_ms"],
        "xnnpack": _yes_no(e["xnnpack_all_delegated"]), "gpu": _yes_no(e["gpu"]["compatible"]),
        "nnapi": (f"API {e['nnapi']['min_android_api']}" if e["nnapi"]["supported"]
                  else "no: " + ", ".join(e["nnapi"]["unsupported_ops"])),
    } for e in report["variants"] if not e["error"]]
    return reports.Table.of(columns, reports.finite(rows))


def read_report(output_dir: str) -> dict[str, Any] | None:
    """Return the report.json of an export folder, or None when there is none."""
    path = os.path.join(output_dir, REPORT_JSON)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def is_current(output_dir: str, config: ExportConfig, source: str) -> bool:
    """Return whether `output_dir` holds a finished export of `source` with `config`."""
    report = read_report(output_dir) or {}
    settings = json.loads(json.dumps(dataclasses.asdict(config)))
    return report.get("export_config") == settings and report.get("source") == source


def variant_entry(report: dict[str, Any], variant: str, shape: list[int] | tuple[int, int]
                  ) -> dict[str, Any]:
    """Return the converted entry of `variant` at `shape`, or {} when it failed or is absent."""
    for entry in report["variants"]:
        if entry["variant"] == variant and entry["shape"] == list(shape) and not entry["error"]:
            return entry
    return {}


def headline(report: dict[str, Any], variant: str) -> dict[str, Any]:
    """Return float32 and `variant` at the scored shape: sizes, reduction, PSNR/SSIM, drops."""
    shape = report["shapes"][0]
    float32, chosen = variant_entry(report, "float32", shape), variant_entry(report, variant,
                                                                             shape)
    drop = (float32["psnr"] - chosen["psnr"] if "psnr" in float32 and "psnr" in chosen
            else None)
    return {"scored_shape": shape, "tiles": report["evaluation"].get("tiles"),
            "keras_float": report["evaluation"].get("keras_float"),
            "recommended": report["recommendation"]["variant"],
            "float32": {k: float32.get(k) for k in ("size_bytes", "psnr", "ssim")},
            "quantized": {"variant": variant, "size_bytes": chosen.get("size_bytes"),
                          "reduction_pct": chosen.get("reduction_vs_float32_pct"),
                          "psnr": chosen.get("psnr"), "ssim": chosen.get("ssim"),
                          "drop_vs_float32_db": drop,
                          "drop_vs_keras_db": chosen.get("psnr_drop_db")}}


def _fmt(value: Any, spec: str = ".2f", missing: str = "–") -> str:
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _recommendation_line(rec: dict[str, Any]) -> str:
    if rec["variant"] is None:
        return f"**No recommendation** — {rec['reason']}."
    deployed = rec.get("deployed")
    run = (f" Run `{deployed['file']}` (= `{deployed['from']}`): "
           f"`python -m tools.infer --model=DIR/{deployed['file']} ...`." if deployed else "")
    return f"**Recommended: `{rec['file']}`** — {rec['reason']}.{run}"


def report_markdown(report: dict[str, Any], table: reports.Table) -> str:
    """Render the report as Markdown: recommendation, `table` (`variants_table`), ops, errors."""
    rec = report["recommendation"]
    evaluation = report["evaluation"]
    lines = [f"# TFLite export: {report['experiment']}", "",
             f"Source `{report['source']}`, data `{report['data']}`.", "",
             _recommendation_line(rec), ""]
    if rec["rejected"]:
        lines += ["Not recommended: " + "; ".join(f"`{v}` {why}"
                                                  for v, why in rec["rejected"].items()) + ".",
                  ""]
    if "keras_float" in evaluation:
        keras_float = evaluation["keras_float"]
        lines += [f"Keras float model on {evaluation['tiles']} validation tiles "
                  f"({evaluation['shape'][0]}x{evaluation['shape'][1]}): PSNR "
                  f"{keras_float['psnr']:.2f} dB, SSIM {keras_float['ssim']:.4f}. "
                  f"Metrics: {evaluation['protocol']}.", ""]
    else:
        lines += [f"Quality {evaluation.get('error', 'not scored')}.", ""]
    lines += [table.markdown()]
    lines += ["", "## Ops", ""]
    for e in (e for e in report["variants"] if not e["error"]):
        ops = ", ".join(f"{name} x{count}" for name, count in e["ops"].items())
        left = ", ".join(e["not_delegated_ops"]) or "none"
        gpu = "; ".join(e["gpu"]["warnings"]) or e["gpu"]["analyzer_summary"]
        lines += [f"- `{e['file']}` ({e['op_count']} ops, IO {e['io_dtypes']}): {ops}. "
                  f"Not on XNNPACK: {left}. GPU analyzer: {gpu}"]
    if report["errors"]:
        lines += ["", "## Errors", ""]
        lines += [f"- {e['variant']} {e['shape'][0]}x{e['shape'][1]}: {e['error']}"
                  for e in report["errors"]]
    lines += ["", "Sizes are of the files on disk (gzip -9 for the gzip column); reductions are "
              "against the float32 file of the same shape. Parity is the PSNR of the LiteRT "
              "output against the Keras model the variant was converted from (float, QAT or "
              "pruned), with the minimum stated per mode in deepisp_tf/export/checks.py. "
              "Latency is the median of LiteRT invokes with "
              f"{report['export_config']['threads']} threads on this machine's CPU. The "
              "recommendation ranks only scored variants within the quality budget, by this "
              "latency, then by size. The NNAPI column is a static check against a documented "
              "op table, not a device run.", ""]
    return "\n".join(lines)


def summary(report: dict[str, Any], output_dir: str) -> str:
    """Return a few lines for the terminal: one per file or error, then the recommendation."""
    lines = []
    for e in report["variants"]:
        name = f"{e['variant']} {e['shape'][0]}x{e['shape'][1]}"
        if e["error"]:
            lines.append(f"{name:28s} FAILED: {e['error']}")
            continue
        quality_text = (f", PSNR {e['psnr']:.2f} dB ({e['psnr_drop_db']:+.2f})"
                        if "psnr_drop_db" in e else "")
        lines.append(f"{name:28s} {e['size_bytes'] / 1e3:8.1f} kB "
                     f"({_fmt(e.get('reduction_vs_float32_pct'), '.0f')}% vs float32), "
                     f"{e['latency_ms']:.2f} ms{quality_text}")
    rec = report["recommendation"]
    lines.append(f"recommended: {rec['file']}: {rec['reason']}" if rec["variant"] else
                 f"no recommendation: {rec['reason']}")
    deployed = rec.get("deployed")
    if deployed:
        lines.append(f"to run: {os.path.join(output_dir, deployed['file'])} (= {deployed['from']}"
                     f"; tools.infer --model=...)")
    lines.append(f"report: {os.path.join(output_dir, REPORT_MD)}")
    return "\n".join(lines)
