"""Convert a trained model into TFLite variants and write a report that proves each one.

  python -m tools.convert_tflite --workdir=runs/default/train --output=runs/default/tflite
  python -m tools.convert_tflite --workdir=W --output=DIR --data=runs/default/data \\
      --override='export.variants=["float32","int8"]' --override=export.int8_io=uint8 \\
      --override='export.extra_shapes=[[256,256],[1088,1920]]' --override=export.packed_io=true

The settings are the workdir's own experiment (W/config.json: its `export` and `optimize`
sections, deepisp_tf/config.py) with `--override` applied (`section.field=value`, the grammar
of every tool). Every export converts first at the shape the preset's tiles score (e.g. 128x128
for 130-px tiles), then at `export.extra_shapes`. Writes DIR/<variant>_<H>x<W>.tflite
(<variant>_packed_<H>x<W>.tflite with export.packed_io: packed [H/2, W/2, 4] input and
[H/2, W/2, 12] output, which the runtime packs and unpacks) for every variant and shape,
DIR/report.json and DIR/report.md (sizes, sparsity, PSNR/SSIM through LiteRT, latency, ops,
XNNPACK / GPU / NNAPI compatibility, the recommended variant) and DIR/recommended.tflite (that
variant at the largest shape, with DIR/config.json: `tools.infer --model=DIR/recommended.tflite`
runs it). The data folder defaults to the
one recorded in W/run.json by tools.train; without data only float32, float16 and dynamic
convert and nothing is recommended.
"""

import sys

from absl import app, flags

from deepisp_tf import config_flags, export
from deepisp_tf.model.io import ModelNotFoundError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir (W/config.json, W/final/model.keras).")
flags.DEFINE_string("output", None, "Folder for the .tflite files and the report.")
flags.DEFINE_string("data", None, "Prepared dataset (default: 'data' in W/run.json).")
config_flags.define_override_flag()
flags.mark_flags_as_required(["workdir", "output"])


def main(argv):
    del argv
    try:
        report = export.export_workdir(FLAGS.workdir, FLAGS.output, data_dir=FLAGS.data,
                                       overrides=FLAGS.override)
    except (ModelNotFoundError, ValueError) as error:
        sys.exit(f"convert_tflite: {error}")
    print(export.summary(report, FLAGS.output))
    if len(report["errors"]) == len(report["variants"]):
        sys.exit("convert_tflite: no variant converted")


if __name__ == "__main__":
    app.run(main)
