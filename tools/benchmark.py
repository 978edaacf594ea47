"""Benchmark the LiteRT runtime on RAW files, or the latency of every .tflite in a folder.

  python -m tools.benchmark --input=RAW_DIR --output=REPORT_DIR [--model=PATH]
      [--precision=auto|float32|float16|int8] [--threads=N] [--interpreters=N]
      [--delegate=xnnpack] [--workers=1,2] [--limit=N] [--repeats=N] [--tile=N]
      [--file_to_file=jpg,png] [--rounds=2] [--min_megapixels=20] [--repeat_files=N]
      [--synthetic_megapixels=12,24] [--memory_megapixels=100]
  python -m tools.benchmark --model_dir=MODELS_DIR --output=REPORT_DIR [--delegate=...]

File mode runs the same files serially, with preprocessing threads || interpreter (swept over
--workers) and through rawpy's reference render, in memory; then file to file (RAW -> written
JPEG / 16-bit PNG), ours against rawpy + cv2.imwrite, alternated; model mode (--model_dir, or
--model naming a folder) times each model per tile and per Full-HD frame. Writes report.json,
report.md, a PNG plot and copies named <kind>_<cpu>_<precision>_litert-<version> into --output.
"""

import logging
import os
import sys

from absl import app, flags

from deepisp_tf import runtime
from deepisp_tf.runtime import bench, output, precision
from tools import runtime_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "Folder of RAW files (file mode).")
flags.DEFINE_string("output", None, "Folder for report.json, report.md and the plot.")
flags.DEFINE_string("model", None, "A .tflite (default: the shipped model), or a folder of them.")
flags.DEFINE_string("model_dir", None, "Folder of .tflite files: model-only mode.")
flags.DEFINE_enum("precision", "auto", list(precision.PRECISIONS),
                  "Shipped model precision (ignored with --model).")
flags.DEFINE_integer("tile", None, "Tile side the model is resized to (default: its own).")
flags.DEFINE_bool("in_memory", True, "File mode: run the in-memory modes.")
flags.DEFINE_list("file_to_file", ["jpg", "png"], "File mode: formats timed file to file "
                  "against rawpy + cv2.imwrite (empty: skip).")
flags.DEFINE_integer("rounds", 2, "File to file: alternated rounds per format.")
flags.DEFINE_integer("writers", 2, "File to file: our encoding threads.")
flags.DEFINE_enum("png_mode", output.DEFAULT_PNG_MODE, list(output.PNG_MODES),
                  "File to file: our 16-bit PNG setting.")
flags.DEFINE_float("min_megapixels", 0, "Repeat the input files (whole copies) until the run "
                   "holds this many megapixels (e.g. 20).")
flags.DEFINE_integer("repeat_files", 1, "Use every input file N times (at least).")
flags.DEFINE_bool("encoders", False, "File mode: also time every encoder setting (PNG modes, "
                  "TIFF, JPEG) on the largest input's reference render.")
flags.DEFINE_list("synthetic_megapixels", [], "Add synthetic DNGs of these sizes (e.g. 12,24).")
runtime_flags.define_interpreter_flags("Interpreters running tiles in parallel in the "
                                       "concurrent mode (default: one per CPU).")
runtime_flags.define_isolation_flags()
flags.adopt_module_key_flags(runtime_flags)
flags.DEFINE_list("workers", ["1", "2"], "Preprocessing thread counts to sweep.")
flags.DEFINE_integer("limit", None, "Use only the first N files.")
flags.DEFINE_float("memory_megapixels", 0, "Also measure the peak RSS of one synthetic frame "
                   "of this many megapixels in a fresh process (0: skip).")
flags.DEFINE_integer("repeats", 1, "File mode: run every mode N times, keep the fastest.")
flags.DEFINE_integer("runs", 20, "Model mode: timed tile runs per model.")
flags.DEFINE_integer("frame_runs", 3, "Model mode: timed Full-HD frames per model.")
flags.mark_flag_as_required("output")


def main(argv):
    del argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    threads = FLAGS.threads or None  # 0: LiteRT's default
    interpreters = FLAGS.interpreters or os.cpu_count() or 1
    settings = bench.Settings(
        model=FLAGS.model or "", precision=FLAGS.precision, tile=FLAGS.tile,
        delegate=FLAGS.delegate,
        delegate_fallback=FLAGS.delegate_fallback, threads=threads,
        workers=tuple(int(w) for w in FLAGS.workers), interpreters=interpreters,
        overlap=FLAGS.overlap, repeats=FLAGS.repeats, isolate=FLAGS.isolate,
        decode_timeout=FLAGS.decode_timeout)
    options = bench.FileOptions(
        in_memory=FLAGS.in_memory, file_to_file=tuple(FLAGS.file_to_file), rounds=FLAGS.rounds,
        writers=FLAGS.writers, png_mode=FLAGS.png_mode, min_megapixels=FLAGS.min_megapixels,
        repeat_files=FLAGS.repeat_files, encoders=FLAGS.encoders,
        synthetic_megapixels=tuple(float(size) for size in FLAGS.synthetic_megapixels))
    try:
        report = bench.run_benchmark(
            settings, input_dir=FLAGS.input, model_dir=FLAGS.model_dir, limit=FLAGS.limit,
            memory_megapixels=FLAGS.memory_megapixels, runs=FLAGS.runs,
            frame_runs=FLAGS.frame_runs, options=options)
    except (FileNotFoundError, ValueError, runtime.DelegateError) as error:
        sys.exit(f"benchmark: {error}")
    paths = bench.write_report(report, FLAGS.output)
    try:  # the plot needs Matplotlib, which only the training extra installs
        from deepisp_tf import plots  # pylint: disable=import-outside-toplevel
        paths.append(plots.plot_benchmark(report, FLAGS.output))
    except ImportError as error:
        logging.warning("no plot (%s): pip install 'deepisp_tf[train]' for it", error)
    print(bench.format_markdown(report))
    print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    app.run(main)
