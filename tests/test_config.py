"""Every preset builds and fits together (tiles vs the model's spatial multiple, export shapes
vs the tiles), survives a JSON round trip, and the one override grammar accepts what it
documents and rejects everything else with an error naming the assignment."""

import dataclasses
import json
import subprocess
import sys

import pytest

from deepisp_tf import config as config_lib
from deepisp_tf import constants
from deepisp_tf.model import build_model

PRESETS = sorted(config_lib.PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_validates_and_documents_its_run_command(name):
    preset = config_lib.get_preset(name)
    assert preset.name == name
    assert f"--config={name}" in preset.command and preset.command.startswith("python -m tools.")
    assert preset.description


@pytest.mark.parametrize("name", PRESETS)
def test_preset_tiles_and_export_shapes_fit_its_model(name):
    preset = config_lib.get_preset(name)
    multiple = preset.model.spatial_multiple()
    assert multiple == 2 ** (preset.model.encoder_stages + 1)
    assert preset.data.crop_size % multiple == 0
    scored, *extra = preset.export_shapes()
    # The scored shape is what the validation tiles hold: square, <= tile - 2, a multiple.
    assert scored[0] == scored[1] and scored[0] % multiple == 0
    assert scored[0] <= preset.data.tile_size - 2 < scored[0] + multiple
    assert all(h % multiple == 0 and w % multiple == 0 for h, w in extra)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_model_builds_at_its_scored_shape(name):
    preset = config_lib.get_preset(name)
    size = preset.scored_export_shape()[0]
    model = build_model(preset.model, size)
    assert tuple(model.outputs[0].shape[1:]) == (size, size, 3)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_round_trips_through_json(name):
    preset = config_lib.get_preset(name)
    assert config_lib.ExperimentConfig.from_dict(json.loads(preset.to_json())) == preset


def test_saved_config_without_export_sections_loads_with_their_defaults():
    saved = json.loads(config_lib.get_preset("default").to_json())
    del saved["export"], saved["optimize"]
    saved["model"]["metadata_size"] = constants.METADATA_SIZE  # as configs saved before it
    loaded = config_lib.ExperimentConfig.from_dict(saved)
    assert loaded.export == config_lib.ExportConfig()
    assert loaded.model.metadata_size == constants.METADATA_SIZE
    saved["model"]["metadata_size"] = 10
    with pytest.raises(ValueError, match="metadata_size 10"):
        config_lib.ExperimentConfig.from_dict(saved)


def test_override_parses_every_documented_value_type():
    preset = config_lib.override(config_lib.get_preset("quickstart"), [
        "train.epochs=2", "model.alpha=1", "model.decoder_filters=[8, 8, 8, 8]",
        "export.extra_shapes=[[256, 256], [1088, 1920]]", "export.int8_io=uint8",
        "export.packed_io=true", "synthetic.camera_matrices=[\"nikon_d700\"]",
        'export.variants=["float32"]'])
    assert preset.train.epochs == 2
    assert preset.model.alpha == 1.0 and isinstance(preset.model.alpha, float)
    assert preset.model.decoder_filters == (8, 8, 8, 8)
    assert preset.export.extra_shapes == ((256, 256), (1088, 1920))
    assert preset.export_shapes() == ((128, 128), (256, 256), (1088, 1920))
    assert preset.export.int8_io == "uint8" and preset.export.packed_io is True
    assert preset.synthetic.camera_matrices == ("nikon_d700",)
    assert preset.export.variants == ("float32",)


@pytest.mark.parametrize("assignment, message", [
    ("epochs=2", "section.field=value"),
    ("train.epochs", "section.field=value"),
    ("train.epochs.x=2", "section.field=value"),
    ("trian.epochs=2", "unknown section 'trian'"),
    ("train.epoch=2", "train has no field 'epoch'"),
    ("train.epochs=two", "train.epochs must be int, got 'two'"),
    ("train.epochs=2.5", "train.epochs must be int, got 2.5"),
    ("train.epochs=true", "train.epochs must be int, got True"),
    ("export.packed_io=1", "export.packed_io must be bool"),
    ("model.decoder_filters=8", "model.decoder_filters must be a list"),
    ("export.extra_shapes=[[1, 2, 3]]", r"export.extra_shapes\[0\] must have 2 values"),
    ('export.variants=["int4"]', "unknown export variants"),
    ("data.tile_size=63", "positive and even"),
    ("export.extra_shapes=[[100, 128]]", r"export shapes \[\[100, 128\]\] are not multiples"),
    ("export.max_psnr_drop_db=-1", "max_psnr_drop_db must be >= 0"),
    ("data.crop_size=80", "must be a multiple of 32"),
])
def test_override_rejects_bad_input_with_a_clear_error(assignment, message):
    with pytest.raises(ValueError, match=message):
        config_lib.override(config_lib.get_preset("quickstart"), [assignment])


def test_invalid_data_config_raises_value_error():
    with pytest.raises(ValueError, match="one-pixel margin"):
        config_lib.DataConfig(tile_size=64, crop_size=64).validate()
    with pytest.raises(ValueError, match="positive and even"):
        config_lib.DataConfig(tile_size=63).validate()
    with pytest.raises(ValueError, match="unknown config"):
        config_lib.get_preset("nope")


def test_every_tool_shares_the_config_default_and_the_override_grammar():
    for tool in ("tools.train", "tools.prepare_data", "tools.quickstart",
                 "tools.benchmark_input"):
        result = subprocess.run([sys.executable, "-m", tool, "--helpfull"], capture_output=True,
                                text=True, check=False)
        text = result.stdout + result.stderr
        config_help = text.split("--config: ")[1][:300]
        assert f"(default: '{config_lib.DEFAULT_PRESET}')" in config_help, tool
        assert "section.field=value" in text, tool
    result = subprocess.run([sys.executable, "-m", "tools.train", "--data=x", "--workdir=y",
                             "--override=train.epochs=two"], capture_output=True, text=True,
                            check=False)
    assert result.returncode != 0
    assert "train: override 'train.epochs=two': train.epochs must be int" in result.stderr


def test_float_head_variants_without_packed_io_are_refused_naming_the_fix():
    config = config_lib.ExportConfig(variants=("float32", "int8_per_tensor_float_head"))
    with pytest.raises(ValueError, match="packed_io=true"):
        config.validate()
    dataclasses.replace(config, packed_io=True).validate()
