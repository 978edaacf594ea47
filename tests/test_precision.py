"""Precision auto-selection: eligibility by quality, a per-machine/model cache, overrides."""

import json
import logging
import os
import shutil

import pytest

import tflite_fixtures
from deepisp_tf.runtime import cpu, models, precision


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision_models")
    float_path = tflite_fixtures.write_model(folder, (64, 64), with_metadata=False,
                                             name="tile_float32.tflite")
    int8_path = tflite_fixtures.write_model(folder, (64, 64), int8="int8", with_metadata=False,
                                            name="tile_int8.tflite")
    return {"float32": float_path, "int8": int8_path}


@pytest.fixture
def model_dir(tiny_models, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    for name, path in tiny_models.items():
        shutil.copyfile(path, folder / f"tile_{name}.tflite")
    (folder / "config.json").write_text(json.dumps({"model": {"encoder_stages": 2}}))
    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path / "cache"))
    return str(folder)


def _count_measurements(monkeypatch):
    calls = []
    original = precision.measure_ms_per_mp

    def counting(path, threads, tile, seconds=precision.MEASURE_SECONDS):
        calls.append(os.path.basename(path))
        return original(path, threads, tile, seconds=0.0)

    monkeypatch.setattr(precision, "measure_ms_per_mp", counting)
    return calls


def test_choose_auto_measures_once_then_reuses_the_cached_choice(model_dir, monkeypatch):
    calls = _count_measurements(monkeypatch)
    first = precision.choose(model_dir, threads=1)
    assert first.source == "measured" and sorted(calls) == ["tile_float32.tflite",
                                                            "tile_int8.tflite"]
    assert first.precision == min(first.ms_per_mp, key=first.ms_per_mp.get)
    second = precision.choose(model_dir, threads=1)
    assert second.source == "cache" and second.precision == first.precision
    assert len(calls) == 2  # nothing measured again
    with open(os.path.join(precision.cache_dir(), precision.CACHE_FILE), encoding="utf-8") as f:
        cache = json.load(f)
    (entry,) = cache["entries"].values()
    assert entry["cpu"] == cpu.cpu_info()["model"] and entry["precision"] == first.precision


def test_choose_measures_again_when_a_model_file_or_the_threads_change(model_dir, monkeypatch):
    calls = _count_measurements(monkeypatch)
    precision.choose(model_dir, threads=1)
    assert len(calls) == 2
    with open(os.path.join(model_dir, "tile_int8.tflite"), "ab") as handle:
        handle.write(b"\0" * 16)  # same model, other bytes: another hash
    assert precision.choose(model_dir, threads=1).source == "measured" and len(calls) == 4
    assert precision.choose(model_dir, threads=2).source == "measured" and len(calls) == 6


def test_choose_override_is_honoured_without_measuring(model_dir, monkeypatch):
    calls = _count_measurements(monkeypatch)
    choice = precision.choose(model_dir, "int8")
    assert (choice.precision, choice.source, calls) == ("int8", "override", [])
    assert choice.path.endswith("tile_int8.tflite")
    assert models.default_model_path(model_dir, precision="float32").endswith(
        "tile_float32.tflite")
    with pytest.raises(ValueError, match="no float16 model.*float32, int8"):
        precision.choose(model_dir, "float16")


def test_corrupted_cache_is_ignored_with_a_warning_and_rewritten(model_dir, monkeypatch, caplog):
    calls = _count_measurements(monkeypatch)
    os.makedirs(precision.cache_dir())
    cache_path = os.path.join(precision.cache_dir(), precision.CACHE_FILE)
    with open(cache_path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        choice = precision.choose(model_dir, threads=1)
    assert choice.source == "measured" and len(calls) == 2
    assert "ignoring the precision cache" in caplog.text
    assert json.load(open(cache_path, encoding="utf-8"))["version"] == precision.CACHE_VERSION


def test_precision_more_than_the_margin_below_float32_is_never_chosen(model_dir, monkeypatch):
    calls = _count_measurements(monkeypatch)
    with open(os.path.join(model_dir, precision.MANIFEST_FILE), "w", encoding="utf-8") as handle:
        json.dump({"reference": "float32", "max_drop_db": 0.5, "precisions": {
            "float32": {"psnr_db": 43.0}, "int8": {"psnr_db": 42.0}}}, handle)
    choice = precision.choose(model_dir, threads=1)
    assert (choice.precision, choice.source, calls) == ("float32", "only", [])
    assert "1.00 dB below float32" in choice.excluded["int8"]


def test_eligible_keeps_precisions_within_the_margin_and_drops_unscored_ones():
    available = {"float32": "a", "float16": "b", "int8": "c"}
    quality = {"max_drop_db": 1.0, "precisions": {"float32": {"psnr_db": 43.03},
                                                  "int8": {"psnr_db": 42.29}}}
    keep, excluded = precision.eligible(available, quality)
    assert keep == ["float32", "int8"] and excluded == {"float16": "no quality listed"}
    assert precision.eligible(available, {}) == (["float16", "float32", "int8"], {})


def test_cache_dir_follows_the_override_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path / "x"))
    assert precision.cache_dir() == str(tmp_path / "x")
    monkeypatch.delenv(precision.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert precision.cache_dir() == str(tmp_path / "xdg" / "deepisp_tf")


def test_parse_cpuinfo_names_the_model_and_isa_flags_on_x86_and_arm():
    x86 = "processor : 0\nmodel name : Intel(R) Xeon(R)\nflags : fpu avx2 avx512f avx512_vnni\n"
    assert cpu.parse_cpuinfo(x86) == {"model": "Intel(R) Xeon(R)",
                                      "flags": ["avx2", "avx512f", "avx512_vnni"]}
    arm = "processor : 0\nFeatures : fp asimd asimddp i8mm\nCPU implementer : 0x41\n" \
          "CPU part : 0xd0c\n"
    parsed = cpu.parse_cpuinfo(arm)
    assert parsed["flags"] == ["neon", "asimd", "asimddp", "i8mm"]
    assert parsed["model"] == "ARM implementer 0x41 part 0xd0c"
