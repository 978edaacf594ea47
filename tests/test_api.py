"""The Python API: `deepisp_tf.render` / `Renderer` give tools.infer's pixels, clear errors."""

import os
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest

import deepisp_tf
from conftest import REPO, sample_files
from deepisp_tf.api import in_input_order
from deepisp_tf.raw.io import RawReadError
from deepisp_tf.runtime import frames, isolation, models


def _infer_png(tmp_path, raw, *model_flag):
    out = tmp_path / "infer_out"
    done = subprocess.run([sys.executable, "-m", "tools.infer", "--noprogress",
                           f"--output={out}", *model_flag, str(raw)], cwd=REPO,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr
    stem = os.path.splitext(os.path.basename(raw))[0]
    bgr = cv2.imread(str(out / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def synthetic_dng(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "frame.dng"
    frames.write_synthetic_dng(str(path), 0.3)
    return path


def test_render_synthetic_dng_equals_infer_png_bit_for_bit(synthetic_dng, tmp_path):
    model = models.default_model_path(precision="int8")
    image = deepisp_tf.render(synthetic_dng, model=model)
    expected = _infer_png(tmp_path, synthetic_dng, f"--model={model}")
    assert image.dtype == np.uint16 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape == expected.shape
    assert np.array_equal(image, expected)


def test_render_real_file_with_default_model_equals_infer_png_bit_for_bit(tmp_path):
    files = [path for path in sample_files() if path.lower().endswith((".dng", ".nef"))]
    if not files:
        pytest.skip("no real DNG/NEF sample in ../shared/raw_samples")
    image = deepisp_tf.render(files[0])
    assert np.array_equal(image, _infer_png(tmp_path, files[0]))


def test_renderer_reuses_one_interpreter_and_renders_each_file_alike(synthetic_dng):
    with deepisp_tf.Renderer(models.default_model_path(precision="int8")) as renderer:
        runner = renderer.runner
        first, second = renderer.render(synthetic_dng), renderer.render(synthetic_dng)
        assert renderer.runner is runner
    assert np.array_equal(first, second)


def test_render_corrupt_file_raises_raw_read_error_naming_it(tmp_path):
    broken = tmp_path / "broken.cr2"
    broken.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    with pytest.raises(RawReadError, match="broken.cr2"):
        deepisp_tf.render(broken, model=models.default_model_path(precision="int8"))
    with pytest.raises(RawReadError, match="no such file"):
        deepisp_tf.render(tmp_path / "missing.nef",
                          model=models.default_model_path(precision="int8"))


def test_renderer_isolated_decoder_crash_raises_raw_read_error_and_goes_on(
        synthetic_dng, tmp_path, monkeypatch):
    crashing = tmp_path / "crash_me.dng"
    crashing.write_bytes(synthetic_dng.read_bytes())
    monkeypatch.setenv(isolation.FAULT_ENV, "segfault=crash_me")
    model = models.default_model_path(precision="int8")
    with deepisp_tf.Renderer(model, isolate=True) as renderer:
        with pytest.raises(RawReadError, match="crash_me.dng: decoder crashed.*SIGSEGV"):
            renderer.render(crashing)
        isolated = renderer.render(synthetic_dng)
    assert np.array_equal(isolated, deepisp_tf.render(synthetic_dng, model=model))


def test_renderer_unknown_option_raises_type_error():
    with pytest.raises(TypeError, match="colour"):
        deepisp_tf.Renderer(colour="vivid")


def test_import_and_render_attribute_load_no_tensorflow():
    code = ("import sys, deepisp_tf; deepisp_tf.render, deepisp_tf.Renderer, "
            "deepisp_tf.RawReadError; print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": REPO})
    assert done.stdout.strip() == "False"
    with pytest.raises(AttributeError, match="no attribute 'renderer'"):
        deepisp_tf.renderer  # pylint: disable=pointless-statement


def test_in_input_order_yields_each_result_once_every_earlier_one_has_come():
    results = [types.SimpleNamespace(index=i) for i in (2, 0, 3, 1, 4)]
    seen = []
    for result in in_input_order(iter(results)):
        seen.append(result.index)
    assert seen == [0, 1, 2, 3, 4]
    # 0 is yielded as soon as it comes, before 3 arrives (nothing is held back longer).
    consumed = []

    def arriving():
        for result in results:
            consumed.append(result.index)
            yield result

    order = in_input_order(arriving())
    assert next(order).index == 0 and consumed == [2, 0]


def test_renderer_with_two_interpreters_equals_one_and_keeps_input_order(synthetic_dng, tmp_path):
    small = tmp_path / "small.dng"
    frames.write_synthetic_dng(str(small), 0.05)
    broken = tmp_path / "broken.dng"
    broken.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    model = models.default_model_path(precision="int8")
    paths = [synthetic_dng, small, synthetic_dng]
    with deepisp_tf.Renderer(model, interpreters=1) as renderer:
        expected = list(renderer.render_many(paths))
    with deepisp_tf.Renderer(model, interpreters=2) as renderer:
        assert renderer._engine.interpreters == 2  # pylint: disable=protected-access
        images = list(renderer.render_many(paths))
        failing = renderer.render_many([small, broken, synthetic_dng])
        assert np.array_equal(next(failing), expected[1])
        with pytest.raises(RawReadError, match="broken.dng"):
            next(failing)
    assert [image.shape for image in images] == [image.shape for image in expected]
    assert all(np.array_equal(a, b) for a, b in zip(images, expected))


def test_renderer_refuses_a_second_render_while_one_is_unfinished(synthetic_dng):
    with deepisp_tf.Renderer(models.default_model_path(precision="int8")) as renderer:
        unfinished = renderer.render_many([synthetic_dng, synthetic_dng])
        first = next(unfinished)
        with pytest.raises(RuntimeError, match="already rendering"):
            renderer.render(synthetic_dng)
        unfinished.close()
        assert np.array_equal(renderer.render(synthetic_dng), first)
