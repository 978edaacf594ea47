"""Images that show a tile or a render to a person: the input preview and the error map.

Shared by training (TensorBoard strips of validation tiles) and evaluation (report grids), so
both show the same thing. numpy + OpenCV, no TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from deepisp_tf import atomic, metrics
from deepisp_tf.raw import cfa

ERROR_GAIN = 10.0        # error map: mean |ours - reference| x 10 over channels, inferno colours


def packed_preview(rggb: np.ndarray) -> np.ndarray:
    """Show the model's input, a gamma-coded RGGB mosaic [H, W], as camera RGB [H/2, W/2, 3].

    One pixel per 2x2 CFA block: (R, mean of the two G, B), clipped to [0, 1].
    """
    planes = cfa.pack(rggb)
    rgb = np.stack([planes[..., 0], planes[..., 1:3].mean(-1), planes[..., 3]], -1)
    return np.clip(rgb, 0, 1)


def error_map(reference: np.ndarray, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return the mean absolute error over channels x ERROR_GAIN, area-downscaled, as colours.

    Args:
      reference: [H, W, 3] in 16-bit units (0..65535), any dtype.
      image: [H, W, 3] in the same units.
      size: (h, w) of the map.

    Returns:
      [h, w, 3] uint8 RGB (inferno colour map; white-hot = large error).
    """
    error = np.empty(reference.shape[:2], np.float32)
    for first in range(0, len(error), metrics.BAND_ROWS):
        rows = slice(first, first + metrics.BAND_ROWS)
        error[rows] = np.abs(reference[rows].astype(np.float32) - image[rows]).mean(-1) / 65535
    small = cv2.resize(error, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    coded = np.clip(small * ERROR_GAIN * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(coded, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


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
