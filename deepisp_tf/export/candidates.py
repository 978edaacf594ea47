"""Candidate tiles of a trained model in several conversion modes, for `tools.evaluate`.

    python -m deepisp_tf.export.candidates --model=M/model.keras --config=M/config.json \\
        --data=DATA[,DATA2] --output=OUT --modes=float32,int8,int8_per_tensor_float_head

writes OUT/<mode>/tile_<precision>.tflite (the shipped model's file names, so that
`tools.evaluate --model=OUT/<mode>/tile_int8.tflite` finds the config.json copied beside it):
packed IO, one tile size, calibrated on centre crops of the training split of each DATA
(`calibration.representative_samples`, split evenly between the folders), integer IO as
`--io_type`. `OUT/sizes.json` lists every file's size. docs/int8.md shows the measured table.
"""

from __future__ import annotations

import json
import os
import shutil

from absl import app, flags

from deepisp_tf.config import ExperimentConfig
from deepisp_tf.export import calibration, convert
from deepisp_tf.model import io as model_io

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Keras model file (.keras).", required=True)
flags.DEFINE_string("config", None, "Its experiment config.json.", required=True)
flags.DEFINE_list("data", None, "Prepared dataset folders for calibration.", required=True)
flags.DEFINE_string("output", None, "Folder to write.", required=True)
flags.DEFINE_list("modes", ["float32", "int8", "int8_per_tensor_float_head", "int8_float_head"],
                  "Conversion modes (convert.CONVERSION_MODES).")
flags.DEFINE_integer("tile", 256, "Tile side (full resolution).")
flags.DEFINE_integer("samples", 64, "Calibration samples in all.")
flags.DEFINE_enum("io_type", "int8", ["float", "int8", "uint8"], "IO of the integer modes.")
flags.DEFINE_bool("compact", True, "Compact every flatbuffer (compact.compact_flatbuffer).")


def precision_of(mode: str) -> str:
    """Return the runtime precision name of a mode's file: float32, float16 or int8."""
    return mode if mode in ("float32", "float16") else "int8"


def calibration_samples(data_dirs: list[str], experiment: ExperimentConfig, count: int,
                        tile: int) -> list:
    """Return `count` packed samples [bayer [1, T/2, T/2, 4]], evenly from each folder."""
    samples = []
    for index, data_dir in enumerate(data_dirs):
        share = count // len(data_dirs) + (index < count % len(data_dirs))
        samples += calibration.representative_samples(data_dir, experiment, share, (tile, tile),
                                                      experiment.model.use_metadata)
    return convert.pack_samples(samples)


def main(argv: list[str]) -> None:
    del argv
    with open(FLAGS.config, encoding="utf-8") as handle:
        experiment = ExperimentConfig.from_dict(json.load(handle))
    model = model_io.load_model(FLAGS.model)
    fixed = convert.packed_fixed_model(model, experiment.model, FLAGS.tile, FLAGS.tile)
    samples = calibration_samples(FLAGS.data, experiment, FLAGS.samples, FLAGS.tile)
    sizes = {}
    for mode in FLAGS.modes:
        folder = os.path.join(FLAGS.output, mode)
        os.makedirs(folder, exist_ok=True)
        shutil.copy(FLAGS.config, os.path.join(folder, "config.json"))
        io_type = FLAGS.io_type if mode in convert.INTEGER_MODES else "float"
        tflite = convert.convert_model(fixed, mode, lambda: iter(samples), io_type,
                                       compact=FLAGS.compact)
        path = os.path.join(folder, f"tile_{precision_of(mode)}.tflite")
        with open(path, "wb") as handle:
            handle.write(tflite)
        sizes[mode] = {"file": os.path.relpath(path, FLAGS.output), "bytes": len(tflite)}
        print(f"{mode}: {len(tflite)} bytes -> {path}", flush=True)
    with open(os.path.join(FLAGS.output, "sizes.json"), "w", encoding="utf-8") as handle:
        json.dump(sizes, handle, indent=2)


if __name__ == "__main__":
    app.run(main)
