"""Packaging: the base install renders without the training stack, and every console script
resolves to a callable that runs its `python -m tools.*` entry point."""

import ast
import configparser
import importlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

TRAINING_STACK = {"tensorflow", "tf-keras", "tensorboard", "tensorflow-model-optimization",
                  "scikit-image", "matplotlib"}


def _setup() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    return parser


def _requirements(text: str) -> set[str]:
    """Return the distribution names of a setup.cfg requirement list (lower case, '-')."""
    names = set()
    for line in text.strip().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[\s\[~<>=!;]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _console_scripts() -> dict[str, str]:
    entries = _setup()["options.entry_points"]["console_scripts"]
    return dict(tuple(part.strip() for part in line.split("="))
                for line in entries.strip().splitlines())


def test_base_install_has_no_training_stack_and_the_train_extra_has_all_of_it():
    setup = _setup()
    base = _requirements(setup["options"]["install_requires"])
    extras = setup["options.extras_require"]
    assert {"ai-edge-litert", "rawpy", "numpy", "opencv-python-headless"} <= base
    assert not base & TRAINING_STACK
    assert _requirements(extras["train"]) == TRAINING_STACK
    assert {"deepisp-tf", "pytest", "import-linter"} <= _requirements(extras["test"])
    assert "deepisp_tf[train,beam]" in extras["test"]


def _external_imports(package_modules: list[str]) -> set[str]:
    """Return the top-level third-party modules `package_modules` import, directly or not."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (test extra)")
    graph = grimp.build_graph("deepisp_tf", "tools", "android_bench",
                              include_external_packages=True, cache_dir=None)
    seen = set()
    for module in package_modules:
        seen |= {module} | graph.find_upstream_modules(module)
    return {name.split(".")[0] for name in seen
            if name.split(".")[0] not in ("deepisp_tf", "tools", "android_bench")}


def test_everything_rendering_imports_is_in_the_base_install():
    imported = _external_imports(["deepisp_tf.runtime", "tools.infer", "tools.benchmark"])
    distributions = importlib.metadata.packages_distributions()
    needed = {distributions[name][0].lower().replace("_", "-") for name in imported
              if name in distributions}
    base = _requirements(_setup()["options"]["install_requires"])
    # matplotlib: only tools.benchmark's optional --plot, which says to install it.
    assert needed - base <= {"matplotlib"}, needed - base
    assert "scikit-image" not in needed and "tensorflow" not in needed


def test_console_scripts_resolve_to_callables_that_run_existing_tools():
    scripts = _console_scripts()
    cli = importlib.import_module("tools.cli")
    assert set(scripts) == set(cli.COMMANDS)
    for name, target in scripts.items():
        module_name, attribute = target.split(":")
        function = getattr(importlib.import_module(module_name), attribute)
        assert callable(function), name
        tool = cli.COMMANDS[name]
        source = open(importlib.util.find_spec(tool).origin, encoding="utf-8").read()
        functions = {node.name for node in ast.parse(source).body
                     if isinstance(node, ast.FunctionDef)}
        assert "main" in functions, f"{name}: {tool} has no main()"


def test_infer_console_script_runs_the_tool_without_tensorflow():
    code = ("import sys; sys.argv = ['deepisp-infer', '--helpfull']\n"
            "from tools import cli\n"
            "try:\n    cli.infer()\nexcept SystemExit as stop:\n"
            "    print('exit', stop.code, 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    text = result.stdout + result.stderr
    assert "exit 1 False" in text, text  # absl's help flags exit 1; TensorFlow never imported
    assert "tools.infer:" in text and "--output: Folder to write the images to." in text


def test_console_script_of_a_training_tool_without_the_training_stack_names_the_extra(
        monkeypatch):
    cli = importlib.import_module("tools.cli")

    def missing(name):
        raise ModuleNotFoundError("No module named 'skimage'", name="skimage")

    monkeypatch.setattr(cli.importlib, "import_module", missing)
    expected = r"skimage is missing\): pip install 'deepisp_tf\[train\]'"
    with pytest.raises(SystemExit, match=expected):
        cli.train()
