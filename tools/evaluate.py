"""Evaluate a model against the reference render and the rawpy LINEAR / classic OpenCV baselines.

  python -m tools.evaluate --model=runs/quickstart/train --input=runs/quickstart/data \
      --output=runs/quickstart/eval
  python -m tools.evaluate --model=model_int8.tflite --input=../shared/raw_samples --output=OUT

--model: a tools.train workdir (float Keras model, run at --tile) or a .tflite file; without it,
the shipped default model. --input: a folder of RAW files, or a prepared dataset (its test split;
a ZRR dataset is scored with PyNET's protocol). Writes OUT/report.json, OUT/report.md and
OUT/report_*.csv and OUT/grids/*.png (input preview | classic | ours | reference | error map).
"""

import logging
import sys

from absl import app, flags

from deepisp_tf import evaluation
from deepisp_tf.raw.io import read_raw
from deepisp_tf.runtime import isolation, models, precision
from deepisp_tf.runtime.pipeline import default_overlap
from tools import runtime_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Training workdir or .tflite file (default: shipped model).")
flags.DEFINE_enum("precision", "auto", list(precision.PRECISIONS),
                  "Shipped model precision without --model (auto: the fastest on this machine "
                  "that keeps quality).")
flags.DEFINE_string("input", None, "Folder of RAW files, or a prepared dataset folder.")
flags.DEFINE_string("output", None, "Report folder to write.")
flags.DEFINE_integer("tile", None, "Tile side for a Keras model (default 256; ZRR: 448).")
flags.DEFINE_integer("overlap", None, "Tile overlap, even (default: the runtime's, tile / 16 "
                     f"rounded down to even, at least 2: {default_overlap(256)} for 256-pixel "
                     "tiles).")
flags.DEFINE_integer("limit", None, "Evaluate at most this many images.")
runtime_flags.define_isolation_flags()
flags.adopt_module_key_flags(runtime_flags)
flags.mark_flags_as_required(["input", "output"])


def main(argv):
    del argv
    logging.getLogger("deepisp_tf").setLevel(logging.INFO)
    decoders = isolation.DecoderPool(1, FLAGS.decode_timeout) if FLAGS.isolate else None
    try:
        model = FLAGS.model or models.default_model_path(precision=FLAGS.precision)
        report = evaluation.evaluate(model, FLAGS.input, FLAGS.output, tile=FLAGS.tile,
                                     overlap=FLAGS.overlap, limit=FLAGS.limit,
                                     read=decoders.load if decoders else read_raw)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"evaluate: {error}")
    finally:
        if decoders is not None:
            decoders.close()
    print(evaluation.format_markdown(report))
    print(f"report: {FLAGS.output}/report.md")


if __name__ == "__main__":
    app.run(main)
