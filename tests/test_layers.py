"""The import contracts of .importlinter hold: layers import downward only, the runtime needs no
TensorFlow, no sibling cycles. Runs the same `lint-imports` as .ci/run, so an upward import
fails the suite too."""

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import REPO

CONFIG = os.path.join(REPO, ".importlinter")


@pytest.mark.skipif(importlib.util.find_spec("importlinter") is None,
                    reason="import-linter is not installed (pip install -e '.[test]')")
def test_import_contracts_of_importlinter_are_all_kept():
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", CONFIG, "--no-cache"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": REPO})
    assert "Contracts:" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout[-6000:]


def test_importlinter_config_names_the_layers_of_the_design():
    text = open(CONFIG, encoding="utf-8").read()
    order = ["tools", "deepisp_tf.evaluation", "deepisp_tf.export", "deepisp_tf.training",
             "deepisp_tf.model", "deepisp_tf.data", "deepisp_tf.runtime", "deepisp_tf.raw",
             "deepisp_tf.config"]
    layers = text[text.index("layers =\n"):]
    positions = [layers.index(f"    {name}") if f"    {name}" in layers
                 else layers.index(f" {name}") for name in order]
    assert positions == sorted(positions)
