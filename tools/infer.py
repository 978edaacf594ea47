"""Render RAW files with the learned ISP (LiteRT, no TensorFlow): 16-bit PNG, JPEG or TIFF.

  python -m tools.infer --model=model.tflite --output=out/ photo.CR2 more_raws/
  python -m tools.infer --output=out/ --format=tiff --delegate=xnnpack --threads=2 IMG.NEF
  python -m tools.infer --model=model.tflite --output=out/ --threads=1 --interpreters=2 raws/

Without --model the default model shipped in the package is used. Writes DIR/<stem>.<format>;
a file that fails is reported and the batch goes on; exits non-zero when every file failed.
"""

import logging
import sys

from absl import app, flags

from deepisp_tf import runtime
from deepisp_tf.runtime import gpu, output

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .tflite of the model contract (default: the shipped one).")
flags.DEFINE_string("output", None, "Folder to write the images to.")
flags.DEFINE_enum("format", "png", list(output.FORMATS),
                  "png: 16-bit RGB; jpg: 8-bit; tiff: 16-bit RGB.")
flags.DEFINE_string("delegate", "xnnpack", "xnnpack, none, gpu, nnapi or external:PATH.")
flags.DEFINE_bool("delegate_fallback", False, "Fall back to the CPU when the delegate fails.")
flags.DEFINE_integer("threads", None, "Threads of each interpreter (default: LiteRT's).")
flags.DEFINE_integer("interpreters", 1, "Interpreters running tiles in parallel (try 2 with "
                     "--threads=1 on a 2-core machine).")
flags.DEFINE_integer("workers", 2, "Preprocessing threads (decode, normalize, tile).")
flags.DEFINE_integer("overlap", None, "Tile overlap in pixels (even; default tile / 16).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flag_as_required("output")


def main(argv):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if len(argv) < 2:
        sys.exit("infer: give at least one RAW file or folder")
    try:
        runner = gpu.open_runner(FLAGS.model or runtime.default_model_path(),
                                 delegate=FLAGS.delegate, threads=FLAGS.threads,
                                 delegate_fallback=FLAGS.delegate_fallback)
    except (FileNotFoundError, ValueError, runtime.DelegateError) as error:
        sys.exit(f"infer: {error}")
    try:
        summary = runtime.infer_files(argv[1:], runner, FLAGS.output, fmt=FLAGS.format,
                                      workers=FLAGS.workers, interpreters=FLAGS.interpreters,
                                      overlap=FLAGS.overlap, progress=FLAGS.progress)
    except ValueError as error:  # bad --overlap, --workers or --interpreters
        sys.exit(f"infer: {error}")
    print(runtime.format_summary(summary))
    if summary.all_failed:
        sys.exit("infer: every file failed")


if __name__ == "__main__":
    app.run(main)
