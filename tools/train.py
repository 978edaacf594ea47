"""Train the ISP network on a prepared dataset (resumes an unfinished run in the same workdir).

  python -m tools.train --config=quickstart --data=runs/quickstart/data \
      --workdir=runs/quickstart/train [--override=train.epochs=2 ...]
      [--strategy=default|mirrored|multi_worker] [--data_service=grpc://HOST:PORT]
  python -m tools.train --config=finetune --init_from=default --data=DIR --workdir=W

Writes W/config.json, W/final/model.keras (what tools.convert_tflite reads), W/best,
W/latest, W/logs (TensorBoard) and W/run.json; see deepisp_tf/training/.
"""

import sys

from absl import app, flags, logging

from deepisp_tf import config_flags
from deepisp_tf import training as train

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "Dataset folder written by tools.prepare_data.")
flags.DEFINE_string("workdir", None, "Output folder (rerun the same command to resume).")
config_flags.define_config_flags()
flags.DEFINE_enum("strategy", "default", list(train.STRATEGIES),
                  "tf.distribute strategy; multi_worker reads TF_CONFIG.")
flags.DEFINE_string("data_service", None, "tf.data service dispatcher address for the input.")
flags.DEFINE_string("init_from", None, "Start from these weights: 'default' (the shipped model; "
                    "use --config=finetune), a training workdir or a .keras file.")
flags.mark_flags_as_required(["data", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    try:
        experiment = config_flags.experiment_from_flags()
    except ValueError as error:
        sys.exit(f"train: {error}")
    try:
        summary = train.train(experiment, FLAGS.data, FLAGS.workdir, strategy=FLAGS.strategy,
                              data_service=FLAGS.data_service, init_from=FLAGS.init_from,
                              verbose=1 if sys.stdout.isatty() else 2)
    except (train.TrainingDataError, train.InitModelError) as error:
        sys.exit(f"train: {error}")
    print(train.format_summary(summary))


if __name__ == "__main__":
    app.run(main)
