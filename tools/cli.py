"""Console scripts: `deepisp-infer` is `python -m tools.infer`, and so on for every tool.

Each script imports only its own tool (so `deepisp-infer` stays TensorFlow-free) and runs its
absl `main` with the command line. `python -m tools.<name>` remains the documented entry point.
"""

from __future__ import annotations

import importlib
import sys

from absl import app

COMMANDS = {
    "deepisp-infer": "tools.infer",
    "deepisp-benchmark": "tools.benchmark",
    "deepisp-prepare": "tools.prepare_data",
    "deepisp-train": "tools.train",
    "deepisp-convert": "tools.convert_tflite",
    "deepisp-evaluate": "tools.evaluate",
    "deepisp-quickstart": "tools.quickstart",
}


TRAINING_STACK = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tensorboard",
                  "skimage", "matplotlib")


def run_tool(module: str) -> None:
    """Import `module` (a tools.* entry point) and run its absl `main` on sys.argv.

    A tool that needs the training stack on a base (runtime-only) install exits with the
    command that installs it instead of a traceback.
    """
    try:
        tool = importlib.import_module(module)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TRAINING_STACK:
            raise
        sys.exit(f"{module} needs the training stack ({error.name} is missing): "
                 "pip install 'deepisp_tf[train]'")
    app.run(tool.main)


def infer() -> None:
    """`deepisp-infer`: RAW files -> images with the LiteRT runtime (tools.infer)."""
    run_tool(COMMANDS["deepisp-infer"])


def benchmark() -> None:
    """`deepisp-benchmark`: the concurrent pipeline benchmark (tools.benchmark)."""
    run_tool(COMMANDS["deepisp-benchmark"])


def prepare() -> None:
    """`deepisp-prepare`: RAW files / synthetic set / ZRR -> shards (tools.prepare_data)."""
    run_tool(COMMANDS["deepisp-prepare"])


def train() -> None:
    """`deepisp-train`: train on a prepared dataset (tools.train; needs the train extra)."""
    run_tool(COMMANDS["deepisp-train"])


def convert() -> None:
    """`deepisp-convert`: a trained workdir -> TFLite variants (tools.convert_tflite)."""
    run_tool(COMMANDS["deepisp-convert"])


def evaluate() -> None:
    """`deepisp-evaluate`: score a model against the reference render (tools.evaluate)."""
    run_tool(COMMANDS["deepisp-evaluate"])


def quickstart() -> None:
    """`deepisp-quickstart`: the whole main job on the embedded data (tools.quickstart)."""
    run_tool(COMMANDS["deepisp-quickstart"])
