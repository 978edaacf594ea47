"""Prepare a training dataset: RAW files, the synthetic set, or Zurich RAW-to-RGB -> shards.

  python -m tools.prepare_data --source=synthetic --output=runs/quickstart/data --config=quickstart
  python -m tools.prepare_data --source=raw_dir --input=DIR --output=OUT [--test_files='*DC120*']
  python -m tools.prepare_data --source=zrr --input=ZRR_ROOT --output=OUT --config=zrr
"""

import dataclasses
import os
import sys

from absl import app, flags

from deepisp_tf import config_flags
from deepisp_tf.data import prepare

FLAGS = flags.FLAGS
flags.DEFINE_enum("source", "raw_dir", ["raw_dir", "synthetic", "zrr"], "What to prepare.")
flags.DEFINE_string("input", None, "RAW folder (raw_dir) or dataset root (zrr).")
flags.DEFINE_string("output", None, "Dataset folder to write (resumes if it exists).")
config_flags.define_config_flags()
flags.DEFINE_integer("workers", None, "Worker processes (default: CPU count).")
flags.DEFINE_list("val_files", [], "Globs of file names held out for validation (whole groups).")
flags.DEFINE_list("test_files", [], "Globs of file names held out for testing, e.g. a "
                  "camera ('*DC120*'); a glob that matches no file is an error.")
flags.DEFINE_integer("synthetic_limit", None, "Only the first N synthetic files.")
flags.DEFINE_enum("runner", "local", ["local", "beam"], "local worker processes, or Apache Beam.")
flags.DEFINE_string("beam_options", None, "Beam pipeline options (--runner=beam), e.g. "
                    "'--runner=FlinkRunner --flink_master=HOST:8081' (docs/scale_out.md).")
flags.mark_flag_as_required("output")


def run(source: str, input_path: str | None, output: str, experiment) -> dict:
    """Prepare the dataset described by the flags and return its manifest."""
    data = experiment.data
    if source == "zrr":
        from deepisp_tf.data import zrr  # pylint: disable=import-outside-toplevel
        return zrr.prepare(_required(input_path, "zrr"), output, data)
    if source == "synthetic":
        from deepisp_tf.raw import synthetic  # pylint: disable=import-outside-toplevel
        paths = synthetic.generate(os.path.join(output, "raw"), experiment.synthetic,
                                   limit=FLAGS.synthetic_limit)
        extra = {"synthetic": dataclasses.asdict(experiment.synthetic)}
    else:
        paths = prepare.list_raw_files(_required(input_path, "raw_dir"))
        extra = {"input": os.path.abspath(input_path)}
    splits = prepare.assign_splits(paths, data.val_fraction, data.test_fraction,
                                   FLAGS.val_files, FLAGS.test_files, seed=data.seed)
    if FLAGS.runner == "beam":
        from deepisp_tf.data import beam_prepare  # pylint: disable=import-outside-toplevel
        return beam_prepare.prepare_files(paths, output, data, source=source, splits=splits,
                                          beam_options=beam_prepare.parse_options(
                                              FLAGS.beam_options), extra=extra)
    return prepare.prepare_files(paths, output, data, source=source, splits=splits,
                                 workers=FLAGS.workers, extra=extra)


def _required(path: str | None, source: str) -> str:
    if not path:
        raise prepare.PrepareError(f"--source={source} needs --input")
    return path


def main(argv):
    del argv
    try:
        experiment = config_flags.experiment_from_flags()
        manifest = run(FLAGS.source, FLAGS.input, FLAGS.output, experiment)
    except (prepare.PrepareError, ValueError) as error:
        sys.exit(f"prepare_data: {error}")
    print(prepare.format_summary(manifest))
    print(f"manifest: {os.path.join(FLAGS.output, prepare.MANIFEST)}")
    if not prepare.usable(manifest):
        sys.exit("prepare_data: nothing usable was produced")


if __name__ == "__main__":
    app.run(main)
