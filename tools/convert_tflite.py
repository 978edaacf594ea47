"""Convert a trained model into TFLite variants and write a report that proves each one.

  python -m tools.convert_tflite --workdir=runs/default/train --output=runs/default/tflite
  python -m tools.convert_tflite --workdir=W --output=DIR --variants=float32,int8 \\
      --input_shape=256,256 --input_shape=full_hd --int8_io=uint8 --data=runs/default/data

Writes DIR/<variant>_<H>x<W>.tflite (<variant>_packed_<H>x<W>.tflite with --packed_io: packed
[H/2, W/2, 4] input and [H/2, W/2, 12] output, which the runtime packs and unpacks) for every
variant and shape, DIR/report.json and DIR/report.md (sizes, sparsity, PSNR/SSIM through
LiteRT, latency, ops, XNNPACK / GPU / NNAPI compatibility, the recommended variant). The data folder defaults to the one recorded in
W/run.json by tools.train; without data only float32, float16 and dynamic convert.
"""

import sys

from absl import app, flags

from deepisp_tf import config as config_lib
from deepisp_tf import export
from deepisp_tf.model.io import ModelNotFoundError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir (W/config.json, W/final/model.keras).")
flags.DEFINE_string("output", None, "Folder for the .tflite files and the report.")
flags.DEFINE_list("variants", list(config_lib.EXPORT_VARIANTS),
                  f"Variants to build, from {', '.join(config_lib.EXPORT_VARIANTS)}.")
flags.DEFINE_multi_string("input_shape", ["256,256"],
                          "Fixed H,W of a converted model (repeatable); 'full_hd' is "
                          f"{config_lib.FULL_HD_INPUT[0]},{config_lib.FULL_HD_INPUT[1]}. The "
                          "first shape is the one scored on the validation split.")
flags.DEFINE_enum("int8_io", "float", list(config_lib.INT8_IO_TYPES),
                  "Input/output dtype of the integer variants.")
flags.DEFINE_bool("packed_io", False,
                  "Write packed-IO models (<variant>_packed_<H>x<W>.tflite): input [1, H/2, W/2, "
                  "4], output [1, H/2, W/2, 12]; the runtime packs and unpacks.")
flags.DEFINE_string("data", None, "Prepared dataset (default: 'data' in W/run.json).")
flags.DEFINE_integer("representative_samples", 64, "Calibration tiles for int8.")
flags.DEFINE_integer("eval_tiles", 32, "Validation tiles scored through LiteRT.")
flags.DEFINE_integer("latency_runs", 20, "Timed invokes per 256x256 tile-equivalent.")
flags.DEFINE_integer("threads", 2, "LiteRT CPU threads for the latency figure.")
flags.DEFINE_float("target_sparsity", 0.5, "Pruned variants: fraction of zero weights.")
flags.DEFINE_integer("prune_steps", 300, "Pruning fine-tune steps.")
flags.DEFINE_integer("qat_steps", 300, "Quantization-aware fine-tune steps.")
flags.DEFINE_float("learning_rate", 1e-4, "Fine-tune learning rate (Adam).")
flags.DEFINE_integer("batch_size", 8, "Fine-tune batch size.")
flags.mark_flags_as_required(["workdir", "output"])


def parse_shape(text: str) -> tuple[int, int]:
    """Parse "H,W" (or "full_hd") into (H, W)."""
    if text.strip().lower() in ("full_hd", "fullhd", "1080p"):
        return config_lib.FULL_HD_INPUT
    try:
        height, width = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--input_shape={text!r} is not H,W (e.g. 256,256) or full_hd") from None
    return height, width


def configs() -> tuple[config_lib.ExportConfig, config_lib.OptimizeConfig]:
    """Build the export and fine-tune settings from the flags (validated)."""
    export_config = config_lib.ExportConfig(
        variants=tuple(FLAGS.variants),
        input_shapes=tuple(parse_shape(s) for s in FLAGS.input_shape),
        int8_io=FLAGS.int8_io, representative_samples=FLAGS.representative_samples,
        eval_tiles=FLAGS.eval_tiles, latency_runs=FLAGS.latency_runs, threads=FLAGS.threads,
        packed_io=FLAGS.packed_io)
    optimize_config = config_lib.OptimizeConfig(
        target_sparsity=FLAGS.target_sparsity, prune_steps=FLAGS.prune_steps,
        qat_steps=FLAGS.qat_steps, learning_rate=FLAGS.learning_rate,
        batch_size=FLAGS.batch_size)
    export_config.validate()
    optimize_config.validate()
    return export_config, optimize_config


def main(argv):
    del argv
    try:
        export_config, optimize_config = configs()
        report = export.export_workdir(FLAGS.workdir, FLAGS.output, export_config,
                                       optimize_config, FLAGS.data)
    except (ModelNotFoundError, ValueError) as error:
        sys.exit(f"convert_tflite: {error}")
    print(export.summary(report, FLAGS.output))
    if len(report["errors"]) == len(report["variants"]):
        sys.exit("convert_tflite: no variant converted")


if __name__ == "__main__":
    app.run(main)
