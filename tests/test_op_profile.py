"""Per-op profile (deepisp_tf.runtime.op_profile, tools.profile_ops): every op of a model is
cut out as a working single-op model that computes what the op computes in the whole model,
the profile lists every node and names the CPU, and the tool prints the report."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tflite_fixtures
from conftest import REPO
from ai_edge_litert.interpreter import Interpreter

from deepisp_tf.runtime import op_profile


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("op_profile")
    return {precision: tflite_fixtures.write_model(folder, (16, 16), with_metadata=False,
                                                   int8=int8, kind="packed")
            for precision, int8 in (("float32", None), ("int8", "int8"))}


def _run(content: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_single_op_models_chained_reproduce_the_whole_model_output(models, precision):
    with open(models[precision], "rb") as handle:
        content = handle.read()
    slices = op_profile.single_op_models(content)
    names = [name for _, name, _, _ in slices]
    assert "CONV_2D" in names and "TRANSPOSE_CONV" in names
    whole = Interpreter(model_content=content, num_threads=1)
    whole.allocate_tensors()
    detail = whole.get_input_details()[0]
    rng = np.random.default_rng(0)
    if precision == "int8":
        bayer = rng.integers(-128, 128, detail["shape"]).astype(np.int8)
    else:
        bayer = rng.random(detail["shape"]).astype(np.float32)
    whole.set_tensor(detail["index"], bayer)
    whole.invoke()
    expected = whole.get_tensor(whole.get_output_details()[0]["index"])
    # The fixture is a chain: each op's one non-constant input is the previous op's output.
    value = bayer
    for _, _, _, single in slices:
        (value,) = _run(single, [value])
    np.testing.assert_array_equal(value, expected)


def test_profile_times_every_node_and_sums_them_by_op_type(models):
    profile = op_profile.profile_model(models["int8"], threads=1, runs=3, warmup=1)
    assert [node.index for node in profile.nodes] == list(range(len(profile.nodes)))
    assert all(node.ms > 0 for node in profile.nodes) and profile.whole_ms > 0
    by_type = profile.by_type()
    assert sum(count for count, _ in by_type.values()) == len(profile.nodes)
    assert sum(ms for _, ms in by_type.values()) == pytest.approx(profile.nodes_ms())
    assert profile.partitions == 1 and profile.undelegated == ()
    assert any(node.output.endswith("int8") for node in profile.nodes)


def test_cpu_info_reads_model_name_and_only_known_isa_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n"
                       "flags\t\t: fpu sse4_1 avx2 avx512_vnni amx_int8 madeup\n\n"
                       "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2\n")
    info = op_profile.cpu_info(str(cpuinfo))
    assert info.model == "Test CPU 9000"
    assert info.flags == ("sse4_1", "avx2", "avx512_vnni", "amx_int8")
    assert "Test CPU 9000" in info.line() and "avx512_vnni" in info.line()
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nHardware\t: Soc X\n")
    assert op_profile.cpu_info(str(arm)).flags == ("asimd", "asimddp", "i8mm")


def test_bad_arguments_raise_value_error_naming_the_problem(models, tmp_path):
    with pytest.raises(ValueError, match="no .tflite model"):
        op_profile.profile_model(str(tmp_path / "missing.tflite"))
    with pytest.raises(ValueError, match="threads"):
        op_profile.profile_model(models["int8"], threads=0)
    with pytest.raises(ValueError, match="statistic"):
        op_profile.profile_model(models["int8"], statistic="mean")
    with pytest.raises(ValueError, match="rounds"):
        op_profile.alternate_whole([models["int8"]], 1, rounds=0)


def test_profile_ops_tool_prints_cpu_ratios_and_op_tables(models, tmp_path, capsys):
    # A subprocess: the tool's absl flags must not meet other tools' flags in one process.
    completed = subprocess.run(
        [sys.executable, "-m", "tools.profile_ops", f"--model={models['float32']}",
         f"--model={models['int8']}", "--threads=1", "--runs=2", "--rounds=1", "--top=3",
         "--statistic=min"], cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": REPO})
    assert completed.returncode == 0, completed.stderr[-2000:]
    text = completed.stdout[completed.stdout.index("CPU: "):]
    assert text.startswith("CPU: ") and "## 1 thread(s)" in text and "min of 2" in text
    assert "| TRANSPOSE_CONV |" in text and "1.00x" in text
    assert "op types side by side" in text and "| whole model |" in text
