"""TFLite export: every variant converts, runs in LiteRT and matches its Keras model; the report
tells the truth about the files; failures are per variant and named.

One export of a tiny trained workdir (tests/test_optimize.py builds it) at 32x32 serves most
tests. Parity tolerances are `export.PARITY_MIN_PSNR_DB` (justified there): float32 >= 70 dB
(and |diff| <= 1e-4), float16 >= 45 dB, dynamic / int8 / QAT >= 30 dB, sparse-encoded int8
>= 25 dB, as PSNR of the LiteRT output against the Keras model the variant was converted from.
"""

import gzip
import json
import os

import numpy as np
import pytest

import test_optimize as tiny
from deepisp_tf import export
from deepisp_tf.config import EXPORT_VARIANTS, ExportConfig
from deepisp_tf.model.io import ModelNotFoundError, save_trained
from deepisp_tf.runtime.interpreter import Runner

SHAPE = (tiny.CROP, tiny.CROP)
CONFIG = ExportConfig(input_shapes=(SHAPE,), representative_samples=8, eval_tiles=4,
                      latency_runs=3)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean(np.square(np.float64(a) - b))))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny.write_dataset(tmp_path_factory.mktemp("data"), {"train": 16, "val": 4})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
    """A training workdir as tools.train leaves it: config, final model, run.json -> data."""
    path = tmp_path_factory.mktemp("workdir")
    save_trained(tiny.train_tiny(data_dir, steps=30), tiny.TINY, path)
    with open(path / "run.json", "w") as handle:
        json.dump({"data": data_dir}, handle)
    return str(path)


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("export"))
    report = export.export_workdir(workdir, output, CONFIG, tiny.FAST_OPTIMIZE)
    return output, report


@pytest.fixture(scope="module")
def keras_model(workdir):
    from deepisp_tf.model.io import load_trained
    return export.fixed_shape_model(load_trained(workdir)[0], *SHAPE)


@pytest.fixture(scope="module")
def val_tiles(data_dir):
    return export.validation_tiles(data_dir, tiny.TINY, 4, tiny.CROP)


def entries(report):
    return {e["variant"]: e for e in report["variants"]}


def test_every_variant_converts_and_loads_in_litert_with_the_named_signature(exported):
    output, report = exported
    assert not report["errors"]
    assert set(entries(report)) == set(EXPORT_VARIANTS)
    for entry in report["variants"]:
        runner = Runner(os.path.join(output, entry["file"]))
        assert runner.tile_shape == SHAPE and not runner.has_metadata
        signature = runner._interpreter._get_full_signature_list()["serving_default"]
        assert set(signature["inputs"]) == {"bayer"}
        assert set(signature["outputs"]) == {"rgb"}


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic", "int8", "int8_per_tensor"])
def test_float_model_variants_match_the_keras_model_within_their_tolerance(
        exported, keras_model, val_tiles, variant):
    output, report = exported
    runner = Runner(os.path.join(output, entries(report)[variant]["file"]))
    mode = export.VARIANTS[variant][1]
    for bayer, _, _ in val_tiles:
        expected = np.asarray(keras_model(bayer[None, ..., None]))[0]
        assert psnr(runner.run(bayer), expected) >= export.PARITY_MIN_PSNR_DB[mode]
    if variant == "float32":
        np.testing.assert_allclose(runner.run(bayer), expected, atol=1e-4)


def test_report_parity_holds_for_every_variant_against_its_own_keras_model(exported):
    _, report = exported
    for entry in report["variants"]:
        assert entry["parity_ok"], (entry["variant"], entry["parity_psnr_db"])
        assert entry["parity_psnr_db"] >= export.PARITY_MIN_PSNR_DB[entry["mode"]]


def test_pruned_and_qat_variants_stay_close_to_the_float_litert_model(exported, val_tiles):
    output, report = exported
    runners = {v: Runner(os.path.join(output, e["file"])) for v, e in entries(report).items()}
    bayer, metadata, _ = val_tiles[0]
    reference = runners["float32"].run(bayer, metadata)
    pruned = runners["pruned"].run(bayer, metadata)
    # The same pruned weights in int8: int8 tolerance against the pruned float32 file.
    for variant in ("pruned_int8", "pruned_int8_per_tensor", "pruned_int8_sparse"):
        mode = export.VARIANTS[variant][1]
        assert psnr(runners[variant].run(bayer, metadata), pruned) >= (
            export.PARITY_MIN_PSNR_DB[mode])
    # Three QAT steps at lr 1e-4 barely move the weights: close to the float model.
    assert psnr(runners["qat_int8"].run(bayer, metadata), reference) >= 25


def test_pruned_model_reaches_the_requested_sparsity_and_quantization_keeps_the_zeros(exported):
    _, report = exported
    assert abs(report["pruned_keras_sparsity"] - tiny.FAST_OPTIMIZE.target_sparsity) < 0.01
    by_variant = entries(report)
    assert by_variant["float32"]["weight_sparsity"] < 0.1
    # Depthwise kernels stay dense (tfmot) and the fixed pack conv is not pruned: a bit < 50%.
    assert by_variant["pruned"]["weight_sparsity"] > 0.35
    for variant in ("pruned_int8", "pruned_int8_per_tensor", "pruned_int8_sparse"):
        assert by_variant[variant]["weight_sparsity"] >= by_variant["pruned"]["weight_sparsity"]


def test_report_sizes_equal_the_files_on_disk_and_reductions_follow_from_them(exported):
    output, report = exported
    on_disk = json.load(open(os.path.join(output, "report.json")))
    assert [e["size_bytes"] for e in on_disk["variants"]] == [
        e["size_bytes"] for e in report["variants"]]
    float32 = entries(report)["float32"]
    for entry in report["variants"]:
        data = open(os.path.join(output, entry["file"]), "rb").read()
        assert entry["size_bytes"] == len(data) == os.path.getsize(
            os.path.join(output, entry["file"]))
        assert entry["gzip_bytes"] == len(gzip.compress(data, 9))
        assert entry["reduction_vs_float32_pct"] == pytest.approx(
            100 * (1 - len(data) / float32["size_bytes"]))
    assert entries(report)["int8"]["size_bytes"] < float32["size_bytes"]
    # One scale per weight tensor drops the per-channel scales, zero points and bias scales.
    assert entries(report)["int8_per_tensor"]["size_bytes"] < entries(report)["int8"]["size_bytes"]
    assert not [n for n in os.listdir(output) if n.endswith(".tmp")]


def test_report_lists_ops_delegation_compatibility_latency_and_a_recommendation(exported):
    output, report = exported
    for entry in report["variants"]:
        assert entry["op_count"] == sum(entry["ops"].values()) > 0
        assert entry["latency_ms"] > 0 and entry["gpu"]["analyzer_summary"]
        assert entry["nnapi"]["check"].startswith("static")
        assert entry["psnr"] > 0 and 0 < entry["ssim"] <= 1
    assert entries(report)["float32"]["xnnpack_all_delegated"]
    assert "DENSIFY" in entries(report)["pruned_int8_sparse"]["ops"]
    assert entries(report)["int8"]["nnapi"]["min_android_api"] == export.NNAPI_INT8_API
    recommended = report["recommendation"]
    assert recommended["variant"] in EXPORT_VARIANTS and recommended["reason"]
    markdown = open(os.path.join(output, "report.md")).read()
    assert f"Recommended: `{recommended['file']}`" in markdown
    assert all(e["file"] in markdown for e in report["variants"])


def test_a_failing_variant_is_reported_by_name_and_the_others_still_convert(
        workdir, tmp_path):
    empty_train = tiny.write_dataset(tmp_path / "data", {"train": 0, "val": 2})
    config = ExportConfig(variants=("float32", "int8"), input_shapes=(SHAPE,), eval_tiles=2,
                          latency_runs=1)
    report = export.export_workdir(workdir, str(tmp_path / "out"), config,
                                   tiny.FAST_OPTIMIZE, data_dir=empty_train)
    by_variant = entries(report)
    assert by_variant["int8"]["error"].startswith("int8: empty representative set")
    assert by_variant["int8"]["file"] is None
    assert not by_variant["float32"]["error"]
    assert os.path.isfile(tmp_path / "out" / by_variant["float32"]["file"])
    assert report["errors"] == [{"variant": "int8", "shape": list(SHAPE),
                                 "error": by_variant["int8"]["error"]}]
    assert "int8 32x32: int8: empty representative set" in open(tmp_path / "out" /
                                                                 "report.md").read()


def test_fixed_shape_rebuild_converts_other_shapes_and_integer_io(keras_model, tmp_path):
    model = export.fixed_shape_model(keras_model, 16, 48)
    path = tmp_path / "f.tflite"
    path.write_bytes(export.convert_model(model, "float32"))
    runner = Runner(path)
    rng = np.random.default_rng(0)
    bayer = rng.uniform(0, 1, (16, 48)).astype(np.float32)
    expected = np.asarray(model(bayer[None, ..., None]))[0]
    assert runner.tile_shape == (16, 48)
    np.testing.assert_allclose(runner.run(bayer), expected, atol=1e-4)

    samples = [[rng.uniform(0, 1, (1, 16, 48, 1)).astype(np.float32)] for _ in range(4)]
    path.write_bytes(export.convert_model(model, "int8", lambda: iter(samples), "uint8"))
    runner = Runner(path)
    assert runner.io_dtypes["bayer"] == np.uint8 and runner.io_dtypes["rgb"] == np.uint8
    assert psnr(runner.run(bayer), expected) >= export.PARITY_MIN_PSNR_DB["int8"]


def test_shapes_the_model_cannot_take_are_refused_before_any_work(workdir, tmp_path):
    config = ExportConfig(input_shapes=((32, 36),))
    with pytest.raises(ValueError, match=r"\[\[32, 36\]\] are not multiples of 8"):
        export.export_workdir(workdir, str(tmp_path / "out"), config)
    assert not os.path.exists(tmp_path / "out")


def test_missing_workdir_is_a_clear_error_naming_it(tmp_path):
    missing = str(tmp_path / "no_such_run")
    with pytest.raises(ModelNotFoundError, match="no_such_run"):
        export.export_workdir(missing, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")
