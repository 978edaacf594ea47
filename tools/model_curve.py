"""The size / quality / speed curve of trained model widths (docs/model_curve.md).

  python -m tools.model_curve --point=w025=runs/curve/w025 --point=w035=runs/curve/w035 \
      --point=w050=runs/curve/w050 --output=runs/curve/report [--threads=2 --runs=30 --rounds=3]

Each point folder holds train/run.json, tflite/<precision>_*256x256.tflite and
eval_<precision>/report.json (`deepisp_tf.evaluation.curve`). Times every model on this host,
alternated, and writes OUT/curve.md, curve.json and curve.csv.
"""

import sys

from absl import app, flags

from deepisp_tf.evaluation import curve
from deepisp_tf.runtime.cpu import cpu_info

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("point", [], "NAME=FOLDER of one trained width.")
flags.DEFINE_string("output", None, "Report folder.")
flags.DEFINE_integer("threads", 2, "LiteRT threads for the timing.")
flags.DEFINE_integer("runs", 30, "Timed tiles per model and round.")
flags.DEFINE_integer("rounds", 3, "Alternated rounds over the models.")
flags.mark_flag_as_required("output")


def main(argv):
    del argv
    try:
        points = [curve.load_point(*spec.split("=", 1)) for spec in FLAGS.point]
    except (TypeError, curve.CurvePointError) as error:
        sys.exit(f"model_curve: {error} (--point=NAME=FOLDER)")
    if not points:
        sys.exit("model_curve: give at least one --point=NAME=FOLDER")
    curve.time_points(points, FLAGS.threads, FLAGS.runs, FLAGS.rounds)
    print(curve.write_curve(points, FLAGS.output, FLAGS.threads, cpu_info()))


if __name__ == "__main__":
    app.run(main)
