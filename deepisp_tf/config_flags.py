"""The configuration flags every tool shares: `--config` (a preset) and `--override` (repeatable).

    python -m tools.train --config=default --override=train.epochs=2 --override=model.alpha=0.5

`--config` defaults to `config.DEFAULT_PRESET` in every tool; `--override` takes the one grammar
of `deepisp_tf/config_grammar.py` (`section.field=value`, JSON values). Tools that start from a
saved experiment (a training workdir) define only `--override` and apply it to that.
"""

from __future__ import annotations

from absl import flags

from deepisp_tf import config as config_lib

FLAGS = flags.FLAGS
OVERRIDE_HELP = ("section.field=value, repeatable; sections: " + ", ".join(config_lib.SECTIONS)
                 + "; values are JSON (2, 0.5, true, [8, 8]) or a plain string. E.g. "
                 "train.epochs=2, export.variants=[\"float32\",\"int8\"].")


def define_override_flag() -> None:
    """Define `--override` (repeatable) on the global absl flags."""
    flags.DEFINE_multi_string("override", [], OVERRIDE_HELP)


def define_config_flags() -> None:
    """Define `--config` (a preset name, default `config.DEFAULT_PRESET`) and `--override`."""
    flags.DEFINE_enum("config", config_lib.DEFAULT_PRESET, sorted(config_lib.PRESETS),
                      "Preset (deepisp_tf/config.py).")
    define_override_flag()


def experiment_from_flags() -> config_lib.ExperimentConfig:
    """Return the `--config` preset with the `--override` assignments applied, validated.

    Raises:
      ValueError: an unknown preset, a malformed or unknown override, or an invalid result.
    """
    return config_lib.override(config_lib.get_preset(FLAGS.config), FLAGS.override)


def overridden(experiment: config_lib.ExperimentConfig) -> config_lib.ExperimentConfig:
    """Return a saved `experiment` (e.g. a workdir's) with the `--override` assignments applied."""
    return config_lib.override(experiment, FLAGS.override)
