"""The whole main job on the embedded synthetic data, in one command that resumes when rerun.

  python -m tools.quickstart [--output=runs/quickstart] [--raw_samples=DIR]
      [--config=quickstart] [--override=section.field=value ...]

prepare the synthetic set -> train the preset -> convert (its export section: float32 + int8 for
`quickstart`) -> evaluate against the classic baselines -> benchmark, then print one summary
table (OUTPUT/summary.md, OUTPUT/summary.json). See deepisp_tf/quickstart.py.
"""

import dataclasses
import logging
import sys

from absl import app, flags
from absl import logging as absl_logging

from deepisp_tf import config_flags, quickstart
from deepisp_tf.data import prepare

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "runs/quickstart", "Report folder (rerun the same to resume).")
flags.DEFINE_string("raw_samples", None, "Real RAW files also evaluated (default: "
                    "$DEEPISP_RAW_SAMPLES, else ../shared/raw_samples if it exists; '' for none).")
config_flags.define_config_flags()
flags.DEFINE_integer("synthetic_limit", None, "Only the first N synthetic files.")
flags.DEFINE_integer("prepare_workers", None, "Prepare worker processes (default: CPU count).")
flags.DEFINE_integer("eval_limit", None, "Evaluate at most N images per set.")
flags.DEFINE_float("bench_megapixels", quickstart.QUICKSTART_BENCH_FILES.min_megapixels,
                   "The benchmark repeats the test files to at least this many megapixels.")
flags.DEFINE_list("bench_formats", list(quickstart.QUICKSTART_BENCH_FILES.file_to_file),
                  "Formats the benchmark times file to file against rawpy + cv2.imwrite.")


def settings_from_flags() -> quickstart.Settings:
    """Return the quickstart settings the flags describe (the defaults: the real quickstart)."""
    raw = quickstart.default_raw_samples() if FLAGS.raw_samples is None else FLAGS.raw_samples
    return quickstart.Settings(output=FLAGS.output, preset=FLAGS.config,
                               overrides=tuple(FLAGS.override),
                               synthetic_limit=FLAGS.synthetic_limit,
                               prepare_workers=FLAGS.prepare_workers,
                               eval_limit=FLAGS.eval_limit, raw_samples=raw or None,
                               benchmark_files=dataclasses.replace(
                                   quickstart.QUICKSTART_BENCH_FILES,
                                   min_megapixels=FLAGS.bench_megapixels,
                                   file_to_file=tuple(FLAGS.bench_formats)),
                               train_verbose=1 if sys.stdout.isatty() else 2)


def main(argv):
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)  # TensorFlow's INFO chatter off
    logging.getLogger("deepisp_tf").setLevel(logging.INFO)  # the steps' progress lines on
    try:
        summary = quickstart.run_quickstart(settings_from_flags())
    except (quickstart.QuickstartError, prepare.PrepareError, FileNotFoundError,
            ValueError) as error:
        sys.exit(f"quickstart: {error}")
    print(quickstart.format_markdown(summary))
    print(f"report folder: {summary['output']}")


if __name__ == "__main__":
    app.run(main)
