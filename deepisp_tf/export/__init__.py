"""TFLite export of a trained model into deployable variants, and the report proving each.

    convert.py      Keras model at a fixed shape -> .tflite bytes (`convert_model`)
    calibration.py  representative samples and validation tiles from the training pipeline
    checks.py       quality, parity with the Keras model, GPU / NNAPI compatibility
    litert.py       the adapter to the LiteRT runtime (latency, weight sparsity, ops)
    variants.py     the variant list and the recommendation policy
    report.py       report.json / report.md, terminal summary, readers
    pipeline.py     `export_model` / `export_workdir`: all of the above for one model

`from deepisp_tf import export; export.export_workdir(...)` is the entry point of
`tools.convert_tflite` and the quickstart; the names below are the package's public API.
"""

from deepisp_tf.constants import tflite_name
from deepisp_tf.export.calibration import representative_samples, validation_tiles
from deepisp_tf.export.checks import NNAPI_INT8_API, NNAPI_OPS, PARITY_MIN_PSNR_DB
from deepisp_tf.export.convert import (CONVERSION_MODES, INTEGER_MODES, convert_model,
                                       fixed_shape_model, pack_samples, packed_fixed_model)
from deepisp_tf.export.pipeline import (RECOMMENDED_FILE, ExportError, data_dir_for, export_model,
                                        export_workdir)
from deepisp_tf.export.report import headline, is_current, read_report, summary, variant_entry
from deepisp_tf.export.variants import VARIANTS, recommend

__all__ = [
    "CONVERSION_MODES", "INTEGER_MODES", "NNAPI_INT8_API", "NNAPI_OPS", "PARITY_MIN_PSNR_DB",
    "RECOMMENDED_FILE", "VARIANTS", "ExportError", "convert_model", "data_dir_for", "export_model",
    "export_workdir", "fixed_shape_model", "headline", "is_current", "pack_samples",
    "packed_fixed_model", "read_report", "recommend", "representative_samples", "summary",
    "tflite_name", "validation_tiles", "variant_entry",
]
