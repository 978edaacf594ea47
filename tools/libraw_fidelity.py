"""Print classic-vs-LibRaw-LINEAR PSNR and per-channel means for RAW files.

Usage: python tools/libraw_fidelity.py [FILE ...]   (default: ../shared/raw_samples/*)
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
import rawpy

from deepisp_tf import metrics
from deepisp_tf.raw import classic, io

LINEAR = {"demosaic_algorithm": rawpy.DemosaicAlgorithm.LINEAR}


def report(path: str) -> tuple[float, np.ndarray]:
    """Return (PSNR dB, [3] classic/LINEAR channel mean ratios) of one file."""
    record, linear = io.read_raw(path, with_reference=True, render_settings=LINEAR)
    ours = classic.render(record)
    if ours.shape != linear.shape:
        return float("nan"), np.full(3, np.nan)
    ratio = ours.reshape(-1, 3).astype(np.float64).mean(0) / np.maximum(
        linear.reshape(-1, 3).astype(np.float64).mean(0), 1e-9)
    return metrics.psnr(linear, ours), ratio


def main(argv: list[str]) -> int:
    default = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "raw_samples", "*")
    files = argv or sorted(p for p in glob.glob(default) if not p.endswith((".md", ".tsv")))
    print(f"{'file':60s} {'PSNR dB':>8s}  mean ratio R G B")
    for path in files:
        value, ratio = report(path)
        print(f"{os.path.basename(path):60s} {value:8.2f}  " + " ".join(f"{r:.4f}" for r in ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
