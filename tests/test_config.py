"""Every preset validates, documents its command, and survives a JSON round trip."""

import json

import pytest

from deepisp_tf import config as config_lib


@pytest.mark.parametrize("name", sorted(config_lib.PRESETS))
def test_preset_validates_and_documents_its_run_command(name):
    preset = config_lib.get_preset(name)
    assert preset.name == name
    assert f"--config={name}" in preset.command and preset.command.startswith("python -m tools.")
    assert preset.description


@pytest.mark.parametrize("name", sorted(config_lib.PRESETS))
def test_preset_round_trips_through_json(name):
    preset = config_lib.get_preset(name)
    assert config_lib.ExperimentConfig.from_dict(json.loads(preset.to_json())) == preset


def test_override_parses_values_and_rejects_unknown_fields():
    preset = config_lib.override(config_lib.get_preset("quickstart"),
                                 ["train.epochs=2", "model.alpha=0.5"])
    assert preset.train.epochs == 2 and preset.model.alpha == 0.5
    with pytest.raises(ValueError, match="has no field"):
        config_lib.override(preset, ["train.epoch=2"])
    with pytest.raises(ValueError, match="section.field=value"):
        config_lib.override(preset, ["epochs=2"])


def test_invalid_data_config_raises_value_error():
    with pytest.raises(ValueError, match="one-pixel margin"):
        config_lib.DataConfig(tile_size=64, crop_size=64).validate()
    with pytest.raises(ValueError, match="positive and even"):
        config_lib.DataConfig(tile_size=63).validate()
    with pytest.raises(ValueError, match="unknown config"):
        config_lib.get_preset("nope")
