"""LiteRT runtime: no TensorFlow import, delegates, CFA phase, geometry on real files, memory,
and the concurrent engine."""

import ctypes.util
import dataclasses
import functools
import logging
import os
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import tflite_fixtures
from conftest import NON_SQUARE, REPO, sample
from deepisp_tf.raw import cfa, color, dng, geometry
from deepisp_tf.raw.io import RawReadError, RawRecord, read_raw
from deepisp_tf.runtime import engine as engine_module
from deepisp_tf.runtime import (DelegateError, Engine, Runner, frames, luts, parse_delegate,
                                pipeline, tiling)

CAM_TO_SRGB = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]],
                       np.float32)   # rows sum to 1, as LibRaw's matrices do


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Metadata-free models (the presets' contract) except "meta"."""
    folder = tmp_path_factory.mktemp("runtime_models")
    write = functools.partial(tflite_fixtures.write_model, folder, with_metadata=False)
    return {
        "float": write((64, 64)),
        "int8": write((64, 64), int8="int8"),
        "uint8": write((64, 64), int8="uint8"),
        "meta": tflite_fixtures.write_model(folder, (64, 64), with_metadata=True),
        "packed": write((64, 64), kind="packed"),
        "packed_int8": write((64, 64), kind="packed", int8="int8"),
        "gray": write((256, 256), kind="gray"),
    }


@pytest.mark.parametrize("modules", ["deepisp_tf.runtime, deepisp_tf.runtime.bench, tools.infer",
                                     "tools.benchmark"])   # two absl tools: one per process
def test_runtime_and_inference_tools_import_no_tensorflow(modules):
    code = (f"import sys; import {modules}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tf_keras', 'keras', 'tensorflow_model_optimization')); "
            "print(bad); sys.exit(1 if bad else 0)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": REPO}, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_cpu_path_does_not_load_the_gpu_api_and_its_ml_dtypes():
    # ml_dtypes, which LiteRT's CompiledModel API imports, takes ~0.6 s to import: a third of a
    # one-file tools.infer run. Only --delegate=gpu needs it.
    code = ("import sys; import deepisp_tf.runtime, deepisp_tf.api, tools.infer; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'ml_dtypes' "
            "or m == 'ai_edge_litert.compiled_model'); print(bad); sys.exit(1 if bad else 0)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": REPO}, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("name,tolerance", [("float", 1e-5), ("int8", 0.005), ("uint8", 0.005),
                                            ("meta", 1e-5)])
def test_runner_output_matches_keras_model(models, name, tolerance):
    rng = np.random.default_rng(1)
    bayer = rng.uniform(0, 1, (64, 64)).astype(np.float32)
    metadata = rng.uniform(0, 1, 12).astype(np.float32) if name == "meta" else None
    runner = Runner(models[name], threads=1)
    assert runner.tile_shape == (64, 64) and runner.has_metadata == (name == "meta")
    expected = tflite_fixtures.keras_predict(bayer, metadata)
    got = runner.run(bayer, metadata)
    assert got.shape == (64, 64, 3) and got.dtype == np.float32
    assert np.abs(got - expected).mean() < tolerance


@pytest.mark.parametrize("name,dtype", [("float", np.float32), ("int8", np.int8),
                                        ("uint8", np.uint8)])
def test_invoke_takes_and_returns_tensors_as_stored_and_run_wraps_it(models, name, dtype):
    runner = Runner(models[name], threads=1)
    assert runner.input_quantization.dtype == runner.output_quantization.dtype == dtype
    assert runner.io_dtypes == {"bayer": np.dtype(dtype), "rgb": np.dtype(dtype)}
    bayer = np.random.default_rng(4).uniform(0, 1, (64, 64)).astype(np.float32)
    stored = runner.invoke(runner.input_quantization.quantize(bayer))
    assert stored.dtype == dtype and stored.shape == (64, 64, 3)
    np.testing.assert_array_equal(runner.output_quantization.dequantize(stored),
                                  runner.run(bayer))


def test_reference_kernels_equal_xnnpack(models):
    bayer = np.random.default_rng(2).uniform(0, 1, (64, 64)).astype(np.float32)
    reference = Runner(models["float"], delegate="none").run(bayer)
    np.testing.assert_allclose(Runner(models["float"], delegate="xnnpack", threads=2)
                               .run(bayer), reference, atol=1e-5)


def test_runner_needs_metadata_only_when_the_model_has_that_input(models):
    bayer = np.zeros((64, 64), np.float32)
    assert not Runner(models["float"]).has_metadata
    assert Runner(models["float"]).run(bayer).shape == (64, 64, 3)
    assert Runner(models["meta"]).has_metadata
    with pytest.raises(ValueError, match="metadata"):
        Runner(models["meta"]).run(bayer)


@pytest.mark.parametrize("spec,expected", [
    ("xnnpack", ("xnnpack", None)), ("NONE", ("none", None)),
    ("gpu", ("gpu", "libtensorflowlite_gpu_delegate.so")), ("nnapi", ("nnapi", None)),
    ("external:/opt/lib/libx.so", ("external", "/opt/lib/libx.so"))])
def test_parse_delegate_accepts_every_documented_spec(spec, expected):
    assert parse_delegate(spec) == expected


@pytest.mark.parametrize("spec", ["tpu", "external:", ""])
def test_parse_delegate_rejects_unknown_specs(spec):
    with pytest.raises(ValueError):
        parse_delegate(spec)


@pytest.mark.parametrize("spec,message", [
    ("gpu", "libtensorflowlite_gpu_delegate.so.*cannot load the library"),
    ("external:/nonexistent/libdelegate.so", "/nonexistent/libdelegate.so.*no such file"),
    ("external:libno_such_delegate.so", "libno_such_delegate.so.*cannot load"),
    ("nnapi", "nnapi.*no delegate library for this platform")])
def test_missing_delegate_library_raises_clear_error(models, spec, message):
    with pytest.raises(DelegateError, match=message):
        Runner(models["float"], delegate=spec)


def test_library_without_delegate_api_raises_clear_error(models):
    library = ctypes.util.find_library("z") or ctypes.util.find_library("m")
    if library is None:
        pytest.skip("no system library to load")
    with pytest.raises(DelegateError, match="not an external delegate library.*"
                                            "tflite_plugin_create_delegate"):
        Runner(models["float"], delegate=f"external:{library}")


def test_delegate_fallback_logs_and_runs_on_cpu(models, caplog):
    bayer = np.random.default_rng(3).uniform(0, 1, (64, 64)).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        runner = Runner(models["float"], delegate="gpu", delegate_fallback=True)
    assert runner.delegate == "xnnpack" and runner.requested_delegate == "gpu"
    assert "cannot load the library" in runner.fallback_reason
    assert "falling back to the CPU" in caplog.text
    np.testing.assert_allclose(runner.run(bayer), Runner(models["float"]).run(bayer), atol=1e-6)
    assert runner.describe()["fallback_reason"] == runner.fallback_reason


def test_runner_rejects_missing_model_and_bad_threads(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model"):
        Runner(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="threads"):
        Runner(models["float"], threads=0)


def _crop_record(scene: np.ndarray, dy: int, dx: int, size: tuple[int, int],
                 pattern: str | None = None) -> RawRecord:
    """The scene (an RGGB mosaic) cropped at (dy, dx): a record of pattern shift(RGGB, dy, dx)."""
    black = np.array([[60, 64], [66, 70]], np.float32)                 # per RGGB site
    record = frames.synthetic_record(*size)
    return dataclasses.replace(
        record, mosaic=scene[dy:dy + size[0], dx:dx + size[1]],
        pattern=pattern or cfa.shift_pattern("RGGB", dy, dx),
        black_levels=cfa.roll_sites(black, dy, dx), wb_gains=np.array([2.2, 1.0, 1.4]))


def test_all_four_cfa_patterns_keep_phase(models):
    """A crop of an RGGB scene starting at (dy, dx) is a GRBG / GBRG / BGGR mosaic; rendering
    it must give the scene's rendering cropped the same way (away from the borders)."""
    runner = Runner(models["packed"], delegate="none")
    scene = frames.synthetic_mosaic(132, 190, seed=5)
    scene = (scene.astype(np.int64) + np.random.default_rng(5).integers(0, 800, scene.shape)
             ).clip(0, 4095).astype(np.uint16)
    height, width, margin = 128, 186, 4
    rendered_scene = pipeline.infer_record(_crop_record(scene, 0, 0, (132, 190)), runner, 16)
    patterns = set()
    for dy in (0, 1):
        for dx in (0, 1):
            record = _crop_record(scene, dy, dx, (height, width))
            patterns.add(record.pattern)
            rendered = pipeline.infer_record(record, runner, 16)
            expected = rendered_scene[dy:dy + height, dx:dx + width]
            difference = np.abs(rendered.astype(int) - expected.astype(int))
            assert difference[margin:-margin, margin:-margin].max() <= 2, record.pattern
    assert patterns == set(cfa.BAYER_PATTERNS)
    wrong = pipeline.infer_record(_crop_record(scene, 1, 1, (height, width), "RGGB"), runner, 16)
    expected = rendered_scene[1:1 + height, 1:1 + width]
    assert np.abs(wrong.astype(int) - expected.astype(int)).max() > 1000   # control: phase matters


def _reference_input(record: RawRecord) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The model input of a whole record by the reference functions: canonical RGGB [H', W']."""
    normalized = color.normalize(record.mosaic, record.pattern, record.black_levels,
                                 record.white_level, record.wb_gains)
    return cfa.canonicalize(color.gamma_compression(normalized).astype(np.float32),
                            record.pattern)


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_infer_record_equals_whole_image_keras_render(models, pattern):
    """End to end: input tables, canonical padding, tiles, stitching and the colour tables give
    what the reference functions and the Keras model compute on the whole canonical mosaic."""
    record = dataclasses.replace(frames.synthetic_record(150, 211, pattern=pattern, seed=3),
                                 cam_to_srgb=CAM_TO_SRGB)
    rendered = pipeline.infer_record(record, Runner(models["packed"], delegate="none"), 24)
    canonical, padding = _reference_input(record)
    whole = tflite_fixtures.keras_predict(canonical, None, kind="packed")
    expected = luts.to_uint16(color.camera_to_srgb(cfa.decanonicalize(whole, padding),
                                                   record.cam_to_srgb))
    assert rendered.shape == expected.shape == (150, 211, 3)
    difference = np.abs(rendered.astype(int) - expected.astype(int))
    assert difference.max() <= 4 and difference.mean() < 1   # the colour tables' rounding


def test_int8_model_render_equals_the_reference_composition(models):
    """An int8-IO model takes table-encoded tiles and its int8 outputs are stitched and coloured
    as stored: the image matches the float reference chain (reference input of every tile, the
    runner's float API, float stitching, `color.camera_to_srgb`) to within rounding."""
    record = dataclasses.replace(frames.synthetic_record(150, 211, pattern="GRBG", seed=4),
                                 cam_to_srgb=CAM_TO_SRGB)
    runner = Runner(models["packed_int8"], delegate="none")
    rendered = pipeline.infer_record(record, runner, 24)
    canonical, padding = _reference_input(record)
    tiles, grid = tiling.tile_image(canonical, 64, 24)
    stitched = tiling.stitch_tiles(np.stack([runner.run(tile) for tile in tiles]), grid)
    expected = luts.to_uint16(color.camera_to_srgb(cfa.decanonicalize(stitched, padding),
                                                   record.cam_to_srgb)).astype(int)
    difference = np.abs(rendered.astype(int) - expected)
    assert difference.max() <= 4 and difference.mean() < 1   # the colour tables' rounding


def _block_luma(image: np.ndarray, block: int = 8) -> np.ndarray:
    height, width = (s // block * block for s in image.shape[:2])
    luma = image[:height, :width].astype(np.float64).mean(axis=2)
    return luma.reshape(height // block, block, width // block, block).mean(axis=(1, 3))


@pytest.mark.parametrize("name", ["RAW_CANON_S30", "Image__1.qtk", "test.dng", *NON_SQUARE])
def test_output_geometry_equals_reference_render_on_real_files(models, name):
    path = sample(name)
    record, reference = read_raw(path, with_reference=True)
    image = pipeline.infer_record(record, Runner(models["gray"]), 32)
    assert image.shape == reference.shape and image.dtype == np.uint16
    if name in NON_SQUARE:
        assert record.pixel_aspect != 1 and image.shape[:2] != record.raw_size
    # The gray model returns its input, the gamma-encoded mosaic, as grey camera RGB: the
    # same scene in the same orientation as the reference render.
    ours = _block_luma(image)
    theirs = _block_luma(reference)
    correlation = np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]
    for flipped in (theirs[::-1], theirs[:, ::-1]):
        assert correlation > np.corrcoef(ours.ravel(), flipped.ravel())[0, 1] + 0.1
    assert correlation > 0.9, correlation


@pytest.mark.parametrize("aspect", [0.5, 1.5345911949685533, 2 / 3, 1.0])
def test_stretch_lines_is_within_one_step_of_geometry_stretch(aspect):
    image = np.random.default_rng(0).integers(0, 65535, (37, 53, 3)).astype(np.uint16)
    stretched = pipeline.stretch_lines(image, aspect)
    reference = geometry.stretch(image, aspect)
    assert stretched.shape == reference.shape and stretched.dtype == np.uint16
    assert np.abs(stretched.astype(int) - reference).max() <= 1   # halves rounded to even


def _traced_peak(runner, record) -> tuple[int, np.ndarray]:
    tracemalloc.start()
    try:
        image = pipeline.infer_record(record, runner)
        return tracemalloc.get_traced_memory()[1], image
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("aspect", [1.0, 0.5])
def test_infer_record_peak_memory_within_estimate(models, aspect):
    record = frames.synthetic_record(1000, 1400, pixel_aspect=aspect)
    peak, image = _traced_peak(Runner(models["gray"]), record)
    assert image.nbytes <= peak <= pipeline.peak_bytes_estimate(record.raw_size, aspect, 256)


def test_infer_record_memory_grows_like_the_uint16_output_not_a_float_frame(models):
    """Doubling the height adds the uint16 output (6 B/px) and little else: no full-frame
    float32 copy (12 B/px for RGB) is ever made."""
    runner = Runner(models["gray"])
    small, _ = _traced_peak(runner, frames.synthetic_record(1200, 900))
    large, _ = _traced_peak(runner, frames.synthetic_record(2400, 900))
    bytes_per_pixel = (large - small) / (1200 * 900)
    # 6 B/px of output; tracemalloc's peaks move by a few KB between runs (measured 5.998).
    assert 5.9 <= bytes_per_pixel < 8, bytes_per_pixel


def test_memory_estimate_of_100_megapixels_is_under_2_gb():
    assert pipeline.peak_bytes_estimate((8660, 11548), 1.0, 256) < 1.5 * 2**30
    assert pipeline.peak_bytes_estimate((5000, 10000), 0.5, 256) < 2 * 2**30   # 100 MP output


def _write_dngs(folder, patterns=("RGGB", "GBRG", "BGGR"), size=(200, 260)):
    paths = []
    for index, pattern in enumerate(patterns):
        path = os.path.join(folder, f"frame_{index}_{pattern}.dng")
        dng.write_dng(path, frames.synthetic_mosaic(*size, seed=index), pattern, 64, 4095,
                      np.eye(3), (0.5, 1.0, 0.7))
        paths.append(path)
    return paths


def test_concurrent_engine_equals_serial_and_reports_bad_files_in_place(models, tmp_path):
    good = _write_dngs(tmp_path)
    bad = tmp_path / "broken.dng"
    bad.write_bytes(b"II*\x00 not a raw file" * 10)
    paths = [good[0], str(bad), good[1], str(tmp_path / "missing.nef"), good[2]]
    runner = Runner(models["packed_int8"])
    serial = list(Engine(runner, serial=True).run(paths))
    assert [result.index for result in serial] == list(range(5))
    for interpreters in (1, 2):    # two interpreters finish tiles out of order
        concurrent = sorted(Engine(runner, workers=2, interpreters=interpreters,
                                   queue_size=3).run(paths), key=lambda result: result.index)
        for first, second in zip(serial, concurrent):
            assert first.path == second.path and first.ok == second.ok
            if first.ok:
                np.testing.assert_array_equal(first.image, second.image)
                assert first.image.shape == (200, 260, 3) and first.tiles == second.tiles > 1
            else:
                assert isinstance(second.error, RawReadError)
                assert second.path in str(second.error)
        assert [result.ok for result in concurrent] == [True, False, True, False, True]


def test_engine_threads_stop_when_the_caller_stops_early(models, tmp_path):
    paths = _write_dngs(tmp_path) * 3
    results = Engine(Runner(models["float"]), workers=2, interpreters=2, queue_size=1).run(paths)
    assert next(results).ok
    results.close()
    alive = [t.name for t in threading.enumerate() if t.name.startswith("deepisp")]
    assert not alive, alive


@pytest.mark.timeout(60)
def test_engine_run_ends_without_waiting_for_its_threads_next_poll(models, monkeypatch):
    # The dispatcher and assembler threads wait in queue polls; a finished run must wake them
    # instead of waiting out the poll (it was 0.1 s per run: most of a small frame's latency).
    monkeypatch.setattr(engine_module, "_POLL_SECONDS", 600.0)
    record = frames.synthetic_record(96, 128)
    engine = Engine(Runner(models["float"]), workers=1, interpreters=2,
                    decode=lambda _: record)
    for _ in range(3):
        (result,) = engine.run(["frame"])
        assert result.ok
    alive = [t.name for t in threading.enumerate() if t.name.startswith("deepisp")]
    assert not alive, alive


class _BrokenRunner:
    tile_shape = (64, 64)
    has_metadata = False

    def run(self, bayer_tile, metadata=None):
        raise RuntimeError("interpreter exploded")


def test_engine_model_failure_stops_the_run(tmp_path):
    paths = _write_dngs(tmp_path, patterns=("RGGB",))
    with pytest.raises(RuntimeError, match="interpreter exploded"):
        list(Engine(_BrokenRunner(), workers=1).run(paths))


def test_engine_needs_a_runner_with_replicas_for_several_interpreters():
    with pytest.raises(ValueError, match="_BrokenRunner cannot open replicas"):
        Engine(_BrokenRunner(), interpreters=2)


@pytest.mark.parametrize("overlap", [3, 40, -2])
def test_engine_rejects_bad_overlap_before_reading_files(models, overlap):
    with pytest.raises(ValueError, match="overlap"):
        Engine(Runner(models["float"]), overlap=overlap)


def test_runner_resized_to_a_larger_tile_renders_like_the_native_tile(models):
    native = Runner(models["float"])
    assert native.tile_shape == (64, 64)
    larger = Runner(models["float"], tile=128)
    assert larger.tile_shape == (128, 128) and larger.native_tile_shape == (64, 64)
    assert larger.replica().tile_shape == (128, 128)
    record = frames.synthetic_record(150, 230)
    small = pipeline.infer_record(record, native, overlap=16)
    big = pipeline.infer_record(record, larger, overlap=16)
    assert small.shape == big.shape == (150, 230, 3)
    assert np.abs(small.astype(np.int64) - big).max() <= 2
    with pytest.raises(ValueError, match="multiple of 64"):
        Runner(models["float"], tile=96)
