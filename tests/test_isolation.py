"""Decoding in worker processes: a file that crashes or hangs the decoder loses only itself."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from deepisp_tf.raw.io import RawReadError, read_raw
from deepisp_tf.runtime import frames, isolation, models


@pytest.fixture(scope="module")
def clean_dng(tmp_path_factory):
    path = tmp_path_factory.mktemp("isolation") / "clean.dng"
    frames.write_synthetic_dng(str(path), 0.08)
    return path


def _copy(source, target):
    target.write_bytes(source.read_bytes())
    return target


def test_pool_decode_equals_read_raw_with_and_without_reference(clean_dng):
    with isolation.DecoderPool(1, timeout=60) as pool:
        record = pool.decode(clean_dng)
        pair = pool.load(clean_dng, with_reference=True)
    direct, reference = read_raw(clean_dng, with_reference=True)
    assert np.array_equal(record.mosaic, direct.mosaic)
    assert record.metadata() == direct.metadata()
    assert np.array_equal(pair[1], reference) and np.array_equal(pair[0].mosaic, direct.mosaic)
    assert not [name for name in os.listdir(isolation.SHARED_DIR)
                if name.startswith(isolation.SHARED_PREFIX)]


def test_segfaulting_decoder_reports_sigsegv_and_next_file_decodes(clean_dng, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv(isolation.FAULT_ENV, "segfault=crash")
    crash = _copy(clean_dng, tmp_path / "crash.dng")
    with isolation.DecoderPool(1, timeout=60) as pool:
        with pytest.raises(RawReadError, match=r"crash.dng: decoder crashed \(SIGSEGV\)"):
            pool.decode(crash)
        assert pool.decode(clean_dng).mosaic.shape == read_raw(clean_dng).mosaic.shape
        assert pool.restarts == 1


def test_hanging_decoder_times_out_and_next_file_decodes(clean_dng, tmp_path, monkeypatch):
    monkeypatch.setenv(isolation.FAULT_ENV, "hang=sleepy")
    sleepy = _copy(clean_dng, tmp_path / "sleepy.dng")
    with isolation.DecoderPool(1, timeout=1.5) as pool:
        with pytest.raises(RawReadError, match="sleepy.dng: decoder timed out after 1.5 s"):
            pool.decode(sleepy)
        assert pool.decode(clean_dng).raw_size == read_raw(clean_dng).raw_size


def test_corrupt_file_keeps_read_raw_reason(tmp_path):
    junk = tmp_path / "junk.nef"
    junk.write_bytes(b"\x00" * 4096)
    with isolation.DecoderPool(1) as pool, pytest.raises(RawReadError) as caught:
        pool.decode(junk)
    with pytest.raises(RawReadError) as direct:
        read_raw(junk)
    assert caught.value.reason == direct.value.reason and caught.value.path == str(junk)


def test_worker_environment_pins_one_openmp_thread_and_bad_options_raise():
    assert isolation._child_environment()["OMP_NUM_THREADS"] == "1"  # pylint: disable=W0212
    with pytest.raises(ValueError, match="segfault=NAME or hang=NAME"):
        isolation.parse_faults("explode=x")
    with pytest.raises(ValueError, match="> 0 seconds"):
        isolation.DecoderPool(1, timeout=0)


def _infer(raws, out, *flags, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tools.infer", "--noprogress", "--workers=2", "--interpreters=1",
         f"--model={models.default_model_path(precision='int8')}", f"--output={out}",
         *flags, str(raws)], cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": REPO, **(env or {})})


def test_infer_crashing_and_hanging_files_are_reported_while_others_render(clean_dng,
                                                                           tmp_path):
    raws = tmp_path / "raws"
    raws.mkdir()
    for name in ("a.dng", "crash.dng", "b.dng", "sleepy.dng", "c.dng"):
        _copy(clean_dng, raws / name)
    done = _infer(raws, tmp_path / "out", "--decode_timeout=3",
                  env={isolation.FAULT_ENV: "segfault=crash,hang=sleepy"})
    assert done.returncode == 0, done.stderr
    assert sorted(n for n in os.listdir(tmp_path / "out") if n.endswith(".png")) == [
        "a.png", "b.png", "c.png"]
    assert f"FAILED {raws / 'crash.dng'}: decoder crashed (SIGSEGV)" in done.stdout
    assert f"FAILED {raws / 'sleepy.dng'}: decoder timed out after 3 s" in done.stdout
    assert "Traceback" not in done.stderr


def _mutations(source: bytes, count: int, seed: int) -> list[tuple[str, bytes]]:
    """Return `count` seeded (name, bytes) mutants: byte flips, truncations, garbage headers."""
    rng = random.Random(seed)
    mutants = []
    for index in range(count):
        data = bytearray(source)
        kind = ("flip", "truncate", "header")[index % 3]
        if kind == "flip":
            for _ in range(rng.randint(1, 64)):
                position = rng.randrange(len(data))
                data[position] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            data = data[:rng.randrange(8, len(data) - 1)]
        else:
            length = rng.randint(4, 512)
            data[:length] = bytes(rng.randrange(256) for _ in range(length))
        mutants.append((f"m{index:02d}_{kind}.dng", bytes(data)))
    return mutants


def test_mutated_raw_corpus_exits_zero_renders_clean_files_reports_every_failure(tmp_path):
    raws = tmp_path / "corpus"
    raws.mkdir()
    source = raws / "clean0.dng"
    frames.write_synthetic_dng(str(source), 0.02)
    frames.write_synthetic_dng(str(raws / "clean1.dng"), 0.03)
    for name, data in _mutations(source.read_bytes(), 20, seed=10):
        (raws / name).write_bytes(data)
    out = tmp_path / "out"
    done = _infer(raws, out, "--decode_timeout=60")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    written = {os.path.splitext(n)[0] for n in os.listdir(out) if n.endswith(".png")}
    failed = {os.path.splitext(os.path.basename(line.split(": ")[0][len("FAILED "):]))[0]
              for line in done.stdout.splitlines() if line.startswith("FAILED ")}
    assert {"clean0", "clean1"} <= written
    assert written | failed == {os.path.splitext(n)[0] for n in os.listdir(raws)}
    assert not written & failed
    assert len(failed) >= 10  # truncations and garbage headers cannot all decode


def test_evaluate_reports_a_crashing_file_as_an_error_row_and_scores_the_others(clean_dng,
                                                                                tmp_path):
    raws = tmp_path / "raws"
    raws.mkdir()
    _copy(clean_dng, raws / "a.dng")
    _copy(clean_dng, raws / "crash.dng")
    out = tmp_path / "eval"
    done = subprocess.run(
        [sys.executable, "-m", "tools.evaluate", f"--input={raws}", f"--output={out}",
         f"--model={models.default_model_path(precision='int8')}"], cwd=REPO,
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": REPO, isolation.FAULT_ENV: "segfault=crash"})
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads((out / "report.json").read_text())["images"]}
    assert "decoder crashed (SIGSEGV)" in rows["crash.dng"]["error"]
    assert rows["a.dng"]["error"] is None and rows["a.dng"]["scores"]["ours"]["psnr"] > 20
