"""Benchmark the input side: prepare_data worker speed-up and tf.data serial vs parallel.

  python -m tools.benchmark_input --input=../shared/raw_samples --output=runs/bench_input

Writes REPORT_DIR/report.json and report.md, and prints the Markdown table.
"""

import os
import sys

from absl import app, flags

from deepisp_tf import atomic
from deepisp_tf import config_flags
from deepisp_tf.data import bench_input, prepare

FLAGS = flags.FLAGS
flags.DEFINE_string("input", os.environ.get("DEEPISP_RAW_SAMPLES", "../shared/raw_samples"),
                    "Folder of RAW files (default: $DEEPISP_RAW_SAMPLES or ../shared/raw_samples).")
flags.DEFINE_string("output", "runs/bench_input", "Report folder (prepared copies go inside).")
config_flags.define_config_flags()
flags.DEFINE_list("workers", ["1", "2"], "prepare_data worker counts to compare.")
flags.DEFINE_integer("batch_size", 16, "Batch size of the pipeline benchmark.")
flags.DEFINE_integer("batches", 200, "Timed batches per pipeline mode.")


def main(argv):
    del argv
    experiment = config_flags.experiment_from_flags()
    paths = prepare.list_raw_files(FLAGS.input) if os.path.isdir(FLAGS.input) else []
    if not paths:
        sys.exit(f"benchmark_input: no RAW files in {FLAGS.input}")
    report = bench_input.run(paths, FLAGS.output, experiment.data,
                             [int(n) for n in FLAGS.workers], FLAGS.batch_size, FLAGS.batches)
    markdown = bench_input.format_report(report, "python -m tools.benchmark_input " +
                                         " ".join(sys.argv[1:]))
    atomic.write_json(os.path.join(FLAGS.output, "report.json"), report)
    atomic.write_text(os.path.join(FLAGS.output, "report.md"), markdown)
    print(markdown)


if __name__ == "__main__":
    app.run(main)
