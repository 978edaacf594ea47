"""`tools.infer` and its library: batch rendering, formats, bad inputs, the default model."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tifffile

import tflite_fixtures
from conftest import REPO
from deepisp_tf.raw import dng
from deepisp_tf.runtime import (NoDefaultModelError, Runner, default_model_path, format_summary,
                                infer_files, output)
from deepisp_tf.runtime import frames
from deepisp_tf.runtime.batch import collect_inputs, plan_outputs


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tflite_fixtures.write_model(tmp_path_factory.mktemp("infer_model"), (64, 64),
                                       kind="packed", with_metadata=False)


def _write_dng(path, pattern="RGGB", size=(130, 170), seed=0):
    dng.write_dng(path, frames.synthetic_mosaic(*size, seed=seed), pattern, 64, 4095, np.eye(3),
                  (0.5, 1.0, 0.7))
    return str(path)


@pytest.fixture()
def raw_folder(tmp_path):
    folder = tmp_path / "raws"
    folder.mkdir()
    _write_dng(folder / "a.dng", "RGGB", seed=1)
    _write_dng(folder / "b.dng", "GRBG", size=(96, 140), seed=2)
    (folder / "notes.md").write_text("sidecar, skipped")
    (folder / "broken.nef").write_bytes(b"\x00" * 4096)
    return folder


def _run_cli(*arguments):
    return subprocess.run([sys.executable, "-m", "tools.infer", "--noprogress", *arguments],
                          cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": REPO})


def test_infer_files_writes_16bit_png_per_file_and_reports_bad_ones(model, raw_folder, tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "missing.cr2"
    summary = infer_files([raw_folder, missing], Runner(model), str(out), workers=2,
                          progress=False)
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]
    image = cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint16 and image.shape == (96, 140, 3)
    assert {failure.path for failure in summary.failures} == {
        str(raw_folder / "broken.nef"), str(missing)}
    assert summary.files == 4 and not summary.all_failed
    assert summary.megapixels == pytest.approx((130 * 170 + 96 * 140) / 1e6)
    text = format_summary(summary)
    assert "files: 4 (2 written, 2 failed)" in text and "megapixels:" in text
    assert f"FAILED {missing}: no such file" in text
    assert f"FAILED {raw_folder / 'broken.nef'}:" in text


def test_png_tiff_and_jpg_outputs_hold_the_same_image(model, raw_folder, tmp_path):
    runner = Runner(model)
    images = {}
    for fmt in output.FORMATS:
        summary = infer_files([raw_folder / "a.dng"], runner, str(tmp_path / fmt), fmt=fmt,
                              progress=False)
        images[fmt] = output.output_path(tmp_path / fmt, "a.dng", fmt)
        assert summary.outputs == [images[fmt]]
        assert summary.bytes == os.path.getsize(images[fmt])
        assert summary.output_megapixels == pytest.approx(130 * 170 / 1e6)
    png = cv2.imread(images["png"], cv2.IMREAD_UNCHANGED)[..., ::-1]
    tiff = tifffile.imread(images["tiff"])
    raw_tiff = tifffile.imread(images["tiff_raw"])
    jpg = cv2.imread(images["jpg"], cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert png.dtype == tiff.dtype == np.uint16 and jpg.dtype == np.uint8
    np.testing.assert_array_equal(png, tiff)
    np.testing.assert_array_equal(png, raw_tiff)
    assert os.path.getsize(images["tiff_raw"]) >= png.nbytes
    # JPEG (4:2:0, quality 95) keeps the picture, not the pixel noise: compare 8x8 block means.
    assert np.abs(_block_means(jpg) - _block_means(output.to_uint8(png))).mean() < 1


@pytest.mark.parametrize("mode", sorted(output.PNG_MODES))
def test_every_png_mode_is_lossless_16_bit(mode):
    image = frames.synthetic_mosaic(96, 3 * 128, white_level=65535, black=0).reshape(96, 128, 3)
    data = output.encode_image(image, "png", png_mode=mode)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(decoded, image)
    if mode == "stored":  # no deflate: raw rows plus PNG framing
        assert len(data) >= image.nbytes
    else:
        assert len(data) < image.nbytes


def test_to_uint8_rounds_every_16_bit_value_to_nearest():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1).repeat(3, axis=2)
    expected = (values.astype(np.uint32) * 255 + 32767) // 65535
    np.testing.assert_array_equal(output.to_uint8(values), expected.astype(np.uint8))


def test_writer_threads_write_the_same_files_as_one_writer(model, raw_folder, tmp_path):
    runner = Runner(model)
    sizes = {}
    for writers in (1, 3):
        folder = tmp_path / f"w{writers}"
        summary = infer_files([raw_folder], runner, str(folder), writers=writers,
                              progress=False)
        assert sorted(os.path.basename(p) for p in summary.outputs) == ["a.png", "b.png"]
        assert summary.bytes == sum(os.path.getsize(p) for p in summary.outputs)
        assert {"encode", "write"} <= set(summary.times.totals())
        assert not [name for name in os.listdir(folder) if name.startswith(".")]  # no temps
        sizes[writers] = {os.path.basename(p): open(p, "rb").read() for p in summary.outputs}
    assert sizes[1] == sizes[3]
    with pytest.raises(ValueError, match="writers must be >= 1"):
        infer_files([raw_folder], runner, str(tmp_path / "w0"), writers=0, progress=False)


def _block_means(image: np.ndarray, block: int = 8) -> np.ndarray:
    height, width = (side // block * block for side in image.shape[:2])
    return image[:height, :width].astype(np.float64).reshape(
        height // block, block, width // block, block, -1).mean(axis=(1, 3))


def test_outputs_never_overwrite_inputs_or_each_other(tmp_path):
    first = _write_dng(tmp_path / "shot.tiff")
    os.makedirs(tmp_path / "other")
    second = _write_dng(tmp_path / "other" / "img.dng")
    third = _write_dng(tmp_path / "img.dng")
    targets, refused = plan_outputs([first, second, third], str(tmp_path), "tiff")
    assert targets == {second: os.path.join(tmp_path, "img.tiff")}
    reasons = {failure.path: failure.reason for failure in refused}
    assert "would overwrite an input" in reasons[first]
    assert "already the output of" in reasons[third]


def test_collect_inputs_skips_sidecars_and_renders_and_reports_missing(raw_folder, tmp_path):
    (raw_folder / "a.png").write_bytes(b"rendered earlier")
    empty = tmp_path / "empty"
    empty.mkdir()
    paths, failures = collect_inputs([raw_folder, raw_folder / "a.dng", empty,
                                      tmp_path / "nope"])
    assert [os.path.basename(p) for p in paths] == ["a.dng", "b.dng", "broken.nef"]
    assert [(f.path, f.reason) for f in failures] == [
        (str(empty), "folder holds no RAW files"), (str(tmp_path / "nope"),
                                                    "no such file or folder")]


def test_default_model_path_finds_model_and_config_or_says_what_is_missing(tmp_path):
    with pytest.raises(NoDefaultModelError, match="tile_int8.tflite, config.json.*--model"):
        default_model_path(tmp_path)
    (tmp_path / "tile_int8.tflite").write_bytes(b"model")
    with pytest.raises(NoDefaultModelError, match=r"\(config.json missing"):
        default_model_path(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert default_model_path(tmp_path) == str(tmp_path / "tile_int8.tflite")


def test_cli_without_model_renders_with_the_shipped_default_model(raw_folder, tmp_path):
    try:
        default_model_path()
    except NoDefaultModelError:
        pytest.skip("no default model ships (yet): the error is tested above")
    completed = _run_cli(f"--output={tmp_path / 'out'}", str(raw_folder / "b.dng"))
    assert completed.returncode == 0, completed.stderr
    image = cv2.imread(str(tmp_path / "out" / "b.png"), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint16 and image.shape == (96, 140, 3)


def test_cli_renders_batch_and_fails_only_when_every_file_fails(model, raw_folder, tmp_path):
    completed = _run_cli(f"--model={model}", f"--output={tmp_path / 'out'}", "--format=jpg",
                         "--threads=1", str(raw_folder))
    assert completed.returncode == 0, completed.stderr
    assert "files: 3 (2 written, 1 failed)" in completed.stdout
    assert f"FAILED {raw_folder / 'broken.nef'}" in completed.stdout
    written = sorted(n for n in os.listdir(tmp_path / "out") if not n.startswith("."))
    assert written == ["a.jpg", "b.jpg"]  # beside the resume manifest
    failed = _run_cli(f"--model={model}", f"--output={tmp_path / 'out2'}",
                      str(raw_folder / "broken.nef"))
    assert failed.returncode != 0 and "every file failed" in failed.stderr


def test_cli_reports_missing_delegate_and_falls_back_when_asked(model, raw_folder, tmp_path):
    missing = _run_cli(f"--model={model}", f"--output={tmp_path / 'o1'}",
                       "--delegate=external:/nonexistent/libgpu.so", str(raw_folder / "a.dng"))
    assert missing.returncode != 0
    assert "/nonexistent/libgpu.so" in missing.stderr and "no such file" in missing.stderr
    fallback = _run_cli(f"--model={model}", f"--output={tmp_path / 'o2'}",
                        "--delegate=external:/nonexistent/libgpu.so", "--delegate_fallback",
                        str(raw_folder / "a.dng"))
    assert fallback.returncode == 0, fallback.stderr
    assert "falling back to the CPU" in fallback.stderr
    assert [n for n in os.listdir(tmp_path / "o2") if not n.startswith(".")] == ["a.png"]
