"""Resumable batches: a rerun renders nothing, changed settings / models / inputs re-render,
--overwrite forces, and a killed batch leaves no partial output."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest

from conftest import REPO
from deepisp_tf.runtime import Runner, frames, infer_files, models, resume


@pytest.fixture(scope="module")
def model():
    return models.default_model_path(precision="int8")


@pytest.fixture(scope="module")
def runner(model):
    return Runner(model, threads=1)


@pytest.fixture()
def raws(tmp_path):
    folder = tmp_path / "raws"
    folder.mkdir()
    for index in range(3):
        frames.write_synthetic_dng(str(folder / f"f{index}.dng"), 0.05 + 0.01 * index)
    return folder


def _run(runner, raws, out, **options):
    return infer_files([raws], runner, str(out), progress=False, resume_outputs=True,
                       **options)


def test_second_run_renders_nothing_and_keeps_outputs(runner, raws, tmp_path):
    out = tmp_path / "out"
    first = _run(runner, raws, out)
    stamps = {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)}
    second = _run(runner, raws, out)
    assert len(first.outputs) == 3 and not first.skipped
    assert second.outputs == [] and len(second.skipped) == 3 and not second.failures
    assert not second.all_failed
    assert {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)} == stamps
    manifest = json.loads((out / resume.MANIFEST_NAME).read_text())
    assert sorted(manifest["outputs"]) == ["f0.png", "f1.png", "f2.png"]


def test_changed_setting_or_overwrite_renders_again(runner, raws, tmp_path):
    out = tmp_path / "out"
    _run(runner, raws, out)
    assert len(_run(runner, raws, out, png_mode="stored").outputs) == 3
    assert len(_run(runner, raws, out, png_mode="stored").skipped) == 3
    assert len(_run(runner, raws, out, png_mode="stored", overlap=4).outputs) == 3
    assert len(_run(runner, raws, out, png_mode="stored", overlap=4, overwrite=True
                    ).outputs) == 3


def test_other_model_renders_again(runner, raws, tmp_path):
    out = tmp_path / "out"
    _run(runner, raws, out)
    other = Runner(models.default_model_path(precision="float32"), threads=1)
    assert len(_run(other, raws, out).outputs) == 3


def test_deleted_output_or_touched_input_renders_only_that_file(runner, raws, tmp_path):
    out = tmp_path / "out"
    _run(runner, raws, out)
    os.unlink(out / "f1.png")
    os.utime(raws / "f2.dng", ns=(time.time_ns(), time.time_ns()))
    again = _run(runner, raws, out)
    assert sorted(os.path.basename(path) for path in again.outputs) == ["f1.png", "f2.png"]
    assert [os.path.basename(path) for path in again.skipped] == ["f0.png"]


def test_remove_stale_temporaries_removes_only_ours(tmp_path):
    ours = tmp_path / ".a.png.0123456789ab.tmp"
    manifest_tmp = tmp_path / f".{resume.MANIFEST_NAME}.ba9876543210.tmp"  # atomic's name
    foreign = tmp_path / ".other.png.0123456789ab.tmp"
    for path in (ours, manifest_tmp, foreign):
        path.write_bytes(b"partial")
    removed = resume.remove_stale_temporaries(str(tmp_path), [str(tmp_path / "a.png")])
    assert sorted(removed) == sorted([str(ours), str(manifest_tmp)])
    assert foreign.exists() and not ours.exists()


def test_corrupt_manifest_renders_everything_again(runner, raws, tmp_path):
    out = tmp_path / "out"
    _run(runner, raws, out)
    (out / resume.MANIFEST_NAME).write_text("{not json")
    assert len(_run(runner, raws, out).outputs) == 3


def _cli(model, raws, out):
    return [sys.executable, "-m", "tools.infer", "--noprogress", f"--model={model}",
            f"--output={out}", "--workers=1", "--interpreters=1", str(raws)]


def test_killed_batch_then_rerun_completes_with_valid_outputs_and_no_temporaries(
        model, tmp_path):
    raws = tmp_path / "many"
    raws.mkdir()
    for index in range(8):
        frames.write_synthetic_dng(str(raws / f"k{index}.dng"), 0.6)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(_cli(model, raws, out), cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / resume.MANIFEST_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    written = [name for name in os.listdir(out) if name.endswith(".png")]
    assert 1 <= len(written) < 8, "the batch was not killed mid-way"
    done = subprocess.run(_cli(model, raws, out), cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "already made" in done.stdout
    names = sorted(os.listdir(out))
    assert names == sorted([resume.MANIFEST_NAME] + [f"k{i}.png" for i in range(8)])
    for index in range(8):
        image = cv2.imread(str(out / f"k{index}.png"), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape[2] == 3
    again = subprocess.run(_cli(model, raws, out), cwd=REPO, env=env, capture_output=True,
                           text=True, check=True)
    assert "(0 written, 8 already made, 0 failed)" in again.stdout
