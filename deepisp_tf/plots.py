"""Plots of the runtime benchmark reports (Matplotlib, a training extra: tools.benchmark draws
them only when it is installed, so the runtime itself never imports it)."""

from __future__ import annotations

import os
from typing import Any

from deepisp_tf import atomic



BENCHMARK_PLOTS = {"files": "throughput.png", "models": "latency.png"}


def plot_benchmark(report: dict[str, Any], output_dir: str) -> str:
    """Plot a runtime benchmark report: throughput against preprocessing threads (file mode,
    throughput.png) or Full-HD latency per model (model mode, latency.png); return the path."""
    path = os.path.join(output_dir, BENCHMARK_PLOTS[report["kind"]])
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axes = pyplot.subplots(figsize=(6.4, 4.0), dpi=100)
    if report["kind"] == "files":
        for mode, style in (("concurrent", "o-"), ("rawpy", "s--")):
            runs = sorted((run for run in report["runs"] if run["mode"] == mode),
                          key=lambda run: run["workers"])
            axes.plot([run["workers"] for run in runs],
                      [run["megapixels_per_s"] for run in runs], style, label=mode)
        for run in (run for run in report["runs"] if run["mode"] == "serial"):
            axes.axhline(run["megapixels_per_s"], color="gray", linestyle=":", label="serial")
        axes.set_xticks(sorted({run["workers"] for run in report["runs"]}))
        axes.set_xlabel("preprocessing threads (rawpy: render threads)")
        axes.set_ylabel("megapixels / s")
        axes.set_title("Throughput against threads")
        axes.legend()
    else:
        rows = [row for row in report["models"] if "error" not in row]
        axes.barh([row["model"] for row in rows],
                  [row["frame_latency_ms"]["p50"] for row in rows])
        axes.set_xlabel(f"Full-HD frame latency p50, ms ({report['settings']['delegate']})")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic.replacing(path, suffix=".png") as temporary:
        figure.savefig(temporary)
    pyplot.close(figure)
    return path
