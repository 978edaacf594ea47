"""Constants shared by training, export and the runtime: the model contract in one place.

No TensorFlow (nor any other heavy) import: the TensorFlow-free runtime imports this module.

Model contract (every `.tflite` and Keras model of the project):
  input  `bayer`    [1, H, W, 1] gamma-encoded, white-balanced RGGB mosaic in [0, 1]
                    (packed IO: [1, H/2, W/2, 4], the planes in `PACKED_PLANE_ORDER`)
  input  `metadata` [1, METADATA_SIZE] camera->sRGB matrix (row-major) + white-balance gains
                    (optional: only models with `ModelConfig.use_metadata`)
  output `rgb`      [1, H, W, 3] gamma camera RGB in [0, 1]
                    (packed IO: [1, H/2, W/2, PACKED_OUTPUT_CHANNELS] in depth-to-space order)
"""

from __future__ import annotations

INPUT_BAYER = "bayer"
INPUT_METADATA = "metadata"
OUTPUT_RGB = "rgb"

COLOR_MATRIX_SIZE = 9                  # camera->sRGB 3x3, row-major
WB_GAINS_SIZE = 3                      # white-balance gains (R, G, B)
METADATA_SIZE = COLOR_MATRIX_SIZE + WB_GAINS_SIZE

# Packed layout: one 2x2 RGGB block per packed pixel, planes in this order (`raw.cfa.pack`).
PACKED_PLANE_ORDER = ("R", "G1", "G2", "B")
PACKED_PLANES = len(PACKED_PLANE_ORDER)
RGB_CHANNELS = 3
PACKED_OUTPUT_CHANNELS = PACKED_PLANES * RGB_CHANNELS   # 2x2 output pixels x RGB

# The experiment config (`ExperimentConfig.to_json`) beside a training workdir's model and a
# shipped model's .tflite files.
MODEL_CONFIG_FILE = "config.json"

# Tiles start at even offsets and have even sides, so every tile of an RGGB mosaic is RGGB.
TILE_MULTIPLE = 2

# Full HD as a model input: 1080 rows is not a multiple of any model's spatial multiple
# (8 ... 64), 1088 = 17 x 64 is (and is the Mobile AI ISP challenge's output size). Frames of
# 1080 rows still run through the tiled runtime, which pads; a fixed-shape model takes 1088.
FULL_HD = (1088, 1920)


def spatial_multiple(encoder_stages: int) -> int:
    """Return the number a model input's H and W must be multiples of: 2 ** (stages + 1).

    Stage s of the encoder ends at stride 2 ** s of the packed (half-resolution) mosaic.
    """
    return TILE_MULTIPLE * 2 ** encoder_stages


def tflite_name(variant: str, height: int, width: int, packed_io: bool = False) -> str:
    """Return the file name of an exported model: <variant>[_packed]_<H>x<W>.tflite."""
    return f"{variant}{'_packed' if packed_io else ''}_{height}x{width}.tflite"
