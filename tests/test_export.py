"""TFLite export: every variant converts, runs in LiteRT and matches its Keras model; the report
tells the truth about the files; failures are per variant and named; the recommendation never
ranks a variant without quality.

One export of a tiny trained workdir (tests/test_optimize.py builds it) at 32x32 serves most
tests. The tests compare LiteRT outputs with the Keras model's outputs themselves, with the
tolerances stated here (`MIN_PSNR_DB`; the reasoning is beside `export.PARITY_MIN_PSNR_DB`):
float32 >= 70 dB and |diff| <= 1e-4, float16 >= 45 dB, dynamic / int8 >= 30 dB, sparse-encoded
int8 >= 25 dB, as PSNR of the LiteRT output against the Keras model (outputs in [0, 1]).
"""

import gzip
import json
import os

import numpy as np
import pytest

import test_optimize as tiny
from deepisp_tf import export, reports
from deepisp_tf.config import EXPORT_VARIANTS, PACKED_ONLY_VARIANTS, ExportConfig
from deepisp_tf.model.io import load_trained
from deepisp_tf.model.io import ModelNotFoundError, save_trained
from deepisp_tf.runtime.interpreter import Runner

SHAPE = (tiny.CROP, tiny.CROP)    # the scored shape the tiny preset's 34-px tiles give
CONFIG = ExportConfig(representative_samples=8, eval_tiles=4, latency_runs=3)
# Minimum PSNR (dB) of a LiteRT output against the Keras model it was converted from, per mode.
MIN_PSNR_DB = {"float32": 70.0, "float16": 45.0, "dynamic": 30.0, "int8": 30.0,
               "int8_per_tensor": 30.0, "int8_sparse": 25.0}
FLOAT32_MAX_ABS_DIFF = 1e-4


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
    return export.fixed_shape_model(load_trained(workdir)[0], *SHAPE)


@pytest.fixture(scope="module")
def val_tiles(data_dir):
    return export.validation_tiles(data_dir, tiny.TINY, 4, tiny.CROP)


def entries(report):
    return {e["variant"]: e for e in report["variants"]}


def test_every_variant_converts_and_loads_in_litert_with_the_named_signature(exported):
    output, report = exported
    assert not report["errors"]
    assert set(entries(report)) == set(EXPORT_VARIANTS) - set(PACKED_ONLY_VARIANTS)
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
        assert psnr(runner.run(bayer), expected) >= MIN_PSNR_DB[mode]
        if variant == "float32":
            np.testing.assert_allclose(runner.run(bayer), expected, atol=FLOAT32_MAX_ABS_DIFF)


def test_report_parity_is_the_psnr_the_test_measures_against_the_keras_model(
        exported, keras_model, val_tiles):
    output, report = exported
    for variant in ("float32", "float16", "dynamic", "int8", "int8_per_tensor"):
        entry = entries(report)[variant]
        runner = Runner(os.path.join(output, entry["file"]))
        outputs = [runner.run(bayer) for bayer, _, _ in val_tiles]
        expected = [np.asarray(keras_model(bayer[None, ..., None]))[0]
                    for bayer, _, _ in val_tiles]
        measured = psnr(np.concatenate(outputs), np.concatenate(expected))
        assert entry["parity_psnr_db"] == pytest.approx(measured, abs=0.5), variant
        assert entry["parity_ok"] == (measured >= entry["parity_min_psnr_db"])


def test_pruned_and_qat_variants_stay_close_to_the_float_litert_model(exported, val_tiles):
    output, report = exported
    runners = {v: Runner(os.path.join(output, e["file"])) for v, e in entries(report).items()}
    bayer, metadata, _ = val_tiles[0]
    reference = runners["float32"].run(bayer, metadata)
    pruned = runners["pruned"].run(bayer, metadata)
    # The same pruned weights in int8: int8 tolerance against the pruned float32 file.
    for variant in ("pruned_int8", "pruned_int8_per_tensor", "pruned_int8_sparse"):
        mode = export.VARIANTS[variant][1]
        assert psnr(runners[variant].run(bayer, metadata), pruned) >= MIN_PSNR_DB[mode]
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
    # The Markdown table is the one stored in report.json (and report_variants.csv).
    table = reports.tables_of(os.path.join(output, "report.json"))["variants"]
    assert [row["size_kb"] for row in table.rows] == [
        e["size_bytes"] / 1e3 for e in report["variants"] if not e["error"]]
    assert table.markdown() in open(os.path.join(output, "report.md")).read()
    assert os.path.isfile(os.path.join(output, "report_variants.csv"))


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
    assert recommended["scored"] and recommended["reason"]
    markdown = open(os.path.join(output, "report.md")).read()
    if recommended["variant"] is None:  # nothing within the budget: said, not hidden
        assert recommended["rejected"] and "No recommendation" in markdown
    else:
        chosen = entries(report)[recommended["variant"]]
        assert chosen["psnr_drop_db"] <= CONFIG.max_psnr_drop_db and chosen["parity_ok"]
        assert f"Recommended: `{recommended['file']}`" in markdown
    assert all(e["file"] in markdown for e in report["variants"])


def test_a_failing_variant_is_reported_by_name_and_the_others_still_convert(
        workdir, tmp_path):
    empty_train = tiny.write_dataset(tmp_path / "data", {"train": 0, "val": 2})
    config = ExportConfig(variants=("float32", "int8"), eval_tiles=2, latency_runs=1)
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
    assert psnr(runner.run(bayer), expected) >= MIN_PSNR_DB["int8"]


def test_shapes_the_model_cannot_take_are_refused_before_any_work(workdir, tmp_path):
    config = ExportConfig(extra_shapes=((32, 36),))
    with pytest.raises(ValueError, match=r"\[\[32, 36\]\] are not multiples of 8"):
        export.export_workdir(workdir, str(tmp_path / "out"), config)
    assert not os.path.exists(tmp_path / "out")


def test_missing_workdir_is_a_clear_error_naming_it(tmp_path):
    missing = str(tmp_path / "no_such_run")
    with pytest.raises(ModelNotFoundError, match="no_such_run"):
        export.export_workdir(missing, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def _entry(variant, drop, latency_ms, size_bytes, parity_ok=True, scored=True):
    """A converted report entry at SHAPE with the fields `recommend` reads."""
    entry = {"variant": variant, "shape": list(SHAPE), "error": None, "file": f"{variant}.tflite",
             "latency_ms": latency_ms, "size_bytes": size_bytes,
             "xnnpack_all_delegated": True, "not_delegated_ops": []}
    if scored:
        entry.update(psnr=40.0 - drop, psnr_drop_db=drop, parity_ok=parity_ok,
                     parity_psnr_db=60.0 if parity_ok else 20.0, parity_min_psnr_db=30.0)
    return entry


def test_recommendation_never_picks_a_variant_that_loses_more_than_the_budget():
    # int8_per_tensor is the fastest and smallest, and loses 3.65 dB (as measured on the
    # shipped model): quality comes first, so the slower float16 within budget wins.
    entries_ = [_entry("float32", 0.0, 2.6, 473_000), _entry("float16", 0.02, 2.5, 274_000),
                _entry("int8", 1.92, 1.6, 247_000), _entry("int8_per_tensor", 3.65, 1.5, 162_000)]
    result = export.recommend(entries_, list(SHAPE), max_drop_db=0.3)
    assert result["variant"] == "float16"
    assert set(result["rejected"]) == {"int8", "int8_per_tensor"}
    assert "3.65 dB" in result["rejected"]["int8_per_tensor"]
    # Raising the budget lets the fastest in: the budget, not a fixed list, decides.
    assert export.recommend(entries_, list(SHAPE), max_drop_db=4.0)["variant"] == (
        "int8_per_tensor")


def test_recommendation_ranks_speed_then_size_and_skips_failed_parity():
    entries_ = [_entry("float32", 0.0, 2.0, 400_000), _entry("int8", 0.1, 1.0, 200_000),
                _entry("int8_per_tensor", 0.1, 1.02, 150_000),   # within 5%: size decides
                _entry("dynamic", 0.0, 0.5, 100_000, parity_ok=False)]
    result = export.recommend(entries_, list(SHAPE), max_drop_db=0.3)
    assert result["variant"] == "int8_per_tensor"
    assert "parity" in result["rejected"]["dynamic"]


def test_recommendation_refuses_to_rank_unscored_variants():
    unscored = [_entry("float32", 0, 2.0, 400_000, scored=False),
                _entry("int8", 0, 1.0, 200_000, scored=False)]
    result = export.recommend(unscored, list(SHAPE), 0.3, "not scored: no data folder")
    assert result["variant"] is None and result["file"] is None and not result["scored"]
    assert "never ranked on speed and size alone" in result["reason"]
    assert "no data folder" in result["reason"]
    # One scored variant among unscored ones: only the scored one can be chosen.
    mixed = [_entry("float32", 0.0, 2.0, 400_000), _entry("int8", 0, 1.0, 200_000, scored=False)]
    assert export.recommend(mixed, list(SHAPE), 0.3)["variant"] == "float32"


def test_export_without_data_recommends_nothing_and_says_why(workdir, tmp_path):
    config = ExportConfig(variants=("float32",), latency_runs=1)
    report = export.export_model(load_trained(workdir)[0], tiny.TINY, str(tmp_path), config,
                                 data_dir=None)
    assert report["shapes"] == [list(SHAPE)]
    assert report["recommendation"]["variant"] is None
    assert "quality was not scored" in report["recommendation"]["reason"]
    assert "No recommendation" in open(tmp_path / "report.md").read()
