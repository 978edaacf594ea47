"""The whole main job on the embedded synthetic data, in one command that resumes when rerun.

  python -m tools.quickstart [--output=runs/quickstart] [--raw_samples=DIR]

prepare the synthetic set -> train the `quickstart` preset -> convert (float32 + int8) ->
evaluate against the classic baselines -> benchmark, then print one summary table
(OUTPUT/summary.md, OUTPUT/summary.json). See deepisp_tf/quickstart.py.
"""

import logging
import sys

from absl import app, flags
from absl import logging as absl_logging

from deepisp_tf import quickstart
from deepisp_tf.data import prepare

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "runs/quickstart", "Report folder (rerun the same to resume).")
flags.DEFINE_string("raw_samples", None, "Real RAW files also evaluated (default: "
                    "$DEEPISP_RAW_SAMPLES, else ../shared/raw_samples if it exists; '' for none).")


def main(argv):
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)  # TensorFlow's INFO chatter off
    logging.getLogger("deepisp_tf").setLevel(logging.INFO)  # the steps' progress lines on
    raw = quickstart.default_raw_samples() if FLAGS.raw_samples is None else FLAGS.raw_samples
    settings = quickstart.Settings(output=FLAGS.output, raw_samples=raw or None,
                                   train_verbose=1 if sys.stdout.isatty() else 2)
    try:
        summary = quickstart.run_quickstart(settings)
    except (quickstart.QuickstartError, prepare.PrepareError, FileNotFoundError,
            ValueError) as error:
        sys.exit(f"quickstart: {error}")
    print(quickstart.format_markdown(summary))
    print(f"report folder: {summary['output']}")


if __name__ == "__main__":
    app.run(main)
