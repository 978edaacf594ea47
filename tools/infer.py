"""Render RAW files with the learned ISP (LiteRT, no TensorFlow): 16-bit PNG, JPEG or TIFF.

  python -m tools.infer --model=model.tflite --output=out/ photo.CR2 more_raws/
  python -m tools.infer --output=out/ --format=tiff --delegate=xnnpack --threads=2 IMG.NEF
  python -m tools.infer --model=model.tflite --output=out/ --threads=1 --interpreters=2 raws/

Without --model the default model shipped in the package is used, in the precision
--precision names (auto: the fastest on this machine among those that keep quality, measured
once and cached in ~/.cache/deepisp_tf or $DEEPISP_CACHE_DIR). Writes DIR/<stem>.<format>;
a file that fails is reported and the batch goes on; exits non-zero when every file failed.
Decoding runs in worker processes (--isolate) with a time limit per file, so a file that
crashes or hangs LibRaw fails alone. Running the same command again skips the outputs already
made by the same model and settings (recorded in OUTPUT/.deepisp_outputs.json); --overwrite
renders everything.
"""

import logging
import os
import sys

from absl import app, flags

from deepisp_tf import runtime
from deepisp_tf.runtime import gpu, output, precision
from tools import runtime_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .tflite of the model contract (default: the shipped one).")
flags.DEFINE_string("output", None, "Folder to write the images to.")
flags.DEFINE_enum("precision", "auto", list(precision.PRECISIONS),
                  "Shipped model precision (ignored with --model).")
flags.DEFINE_enum("format", "png", list(output.FORMATS),
                  "png: 16-bit RGB; jpg: 8-bit; tiff: 16-bit RGB deflate; tiff_raw: 16-bit "
                  "RGB uncompressed (fastest lossless).")
flags.DEFINE_enum("png_mode", output.DEFAULT_PNG_MODE, list(output.PNG_MODES),
                  "16-bit PNG setting: fast (deflate, Huffman only, SUB filter), small "
                  "(OpenCV's defaults), stored (no compression).")
flags.DEFINE_integer("writers", 2, "Threads encoding and writing images.")
flags.DEFINE_integer("tile", None, "Tile side the model is resized to (a multiple of its "
                     "spatial multiple; default: the model's own).")
runtime_flags.define_interpreter_flags()
runtime_flags.define_isolation_flags()
flags.adopt_module_key_flags(runtime_flags)
flags.DEFINE_integer("workers", 2, "Preprocessing threads (decode, normalize, tile).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_bool("resume", True, "Skip outputs OUTPUT/.deepisp_outputs.json records as made "
                  "by the same model and settings (a rerun redoes nothing).")
flags.DEFINE_bool("overwrite", False, "Render every file, even outputs already made.")
flags.mark_flag_as_required("output")


def main(argv):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    threads = FLAGS.threads or None  # 0: LiteRT's default
    interpreters = FLAGS.interpreters or os.cpu_count() or 1
    if len(argv) < 2:
        sys.exit("infer: give at least one RAW file or folder")
    try:
        model = FLAGS.model or runtime.default_model_path(
            precision=FLAGS.precision, threads=threads, tile=FLAGS.tile)
        runner = gpu.open_runner(model, delegate=FLAGS.delegate, threads=threads,
                                 delegate_fallback=FLAGS.delegate_fallback, tile=FLAGS.tile)
    except (FileNotFoundError, ValueError, runtime.DelegateError) as error:
        sys.exit(f"infer: {error}")
    try:
        summary = runtime.infer_files(argv[1:], runner, FLAGS.output, fmt=FLAGS.format,
                                      workers=FLAGS.workers, interpreters=interpreters,
                                      overlap=FLAGS.overlap, writers=FLAGS.writers,
                                      png_mode=FLAGS.png_mode, progress=FLAGS.progress,
                                      resume_outputs=FLAGS.resume, overwrite=FLAGS.overwrite,
                                      isolate=FLAGS.isolate,
                                      decode_timeout=FLAGS.decode_timeout)
    except ValueError as error:  # bad --overlap, --workers, --interpreters or --writers
        sys.exit(f"infer: {error}")
    print(runtime.format_summary(summary))
    if summary.all_failed:
        sys.exit("infer: every file failed")


if __name__ == "__main__":
    app.run(main)
