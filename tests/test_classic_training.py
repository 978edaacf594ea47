"""Training inputs and the runtime's input LUT use the same LibRaw-exact normalization.

A synthetic DNG with LibRaw's hard cases (automatic white balance with unequal greens, per-site
black levels, non-square pixels) goes through the tile builder, the TFRecord schema and the TF
input pipeline, and through the runtime's look-up table; both must equal
`gamma_compression(color.normalize(...))` of the record, the function `raw.classic` renders
with (>= 50 dB against LibRaw's LINEAR render, tests/test_classic_synthetic.py).
"""

import numpy as np

from deepisp_tf.data import pipeline as data_pipeline
from deepisp_tf.data import tfrecord, tiles
from deepisp_tf.raw import cfa, color, dng, io
from deepisp_tf.runtime import pipeline as runtime_pipeline

BLACK = np.array([[180, 200], [230, 210]])


def _hard_case_dng(tmp_path) -> str:
    rng = np.random.default_rng(3)
    height, width = 97, 130  # odd height: the canonical crop differs from the mosaic
    mosaic = 200 + rng.random((height, width)) * 3000
    mosaic[0::2, 0::2] *= 0.7  # greens of different sensitivity: separate auto-WB gains
    return dng.write_dng(tmp_path / "hard.dng", np.round(mosaic).astype(np.uint16), "GBRG",
                         BLACK, 4095, np.eye(3), None, default_scale=(1.0, 2.0))


def _expected_rggb(record: io.RawRecord) -> np.ndarray:
    normalized = color.normalize(record.mosaic, record.pattern, record.black_levels,
                                 record.white_level, record.gains_2x2)
    return color.gamma_compression(cfa.canonicalize(normalized, record.pattern)[0])


def test_training_input_of_tile_builder_equals_raw_normalization(tmp_path):
    path = _hard_case_dng(tmp_path)
    record = io.read_raw(path)
    assert record.wb_source == "auto"
    assert abs(record.gains_2x2[0, 0] / record.gains_2x2[1, 1] - 1) > 0.2  # greens apart
    file_tiles = tiles.cut_tiles(path, tile=32, stride=32, border=0, limit=4)
    expected = _expected_rggb(record)
    for mosaic, target, offset in zip(file_tiles.mosaics, file_tiles.targets,
                                      file_tiles.offsets):
        serialized = tfrecord.encode_example(
            mosaic, target, file_tiles.black_levels, file_tiles.white_level,
            file_tiles.wb_gains, file_tiles.cam_to_srgb, "hard.dng", tuple(offset),
            site_gains=file_tiles.site_gains)
        bayer, _, _ = data_pipeline.normalize(tfrecord.parse_example(serialized))
        # align() crops `top` rows to start on red where canonicalize pads `top` mirrored rows:
        # aligned row r is mosaic row r + top, canonical row r + 2 * top (columns likewise).
        top, left = cfa.red_offset(record.pattern)
        row, col = int(offset[0]) + 2 * top, int(offset[1]) + 2 * left
        window = expected[row:row + 32, col:col + 32]
        np.testing.assert_allclose(bayer.numpy()[..., 0], window, atol=2e-6)


def test_runtime_input_table_equals_raw_normalization(tmp_path):
    record = io.read_raw(_hard_case_dng(tmp_path))
    plan = runtime_pipeline.plan_record(record, tile=32, overlap=8)
    expected = _expected_rggb(record)
    checked = 0
    for row, col, tile in runtime_pipeline.iter_tiles(plan):
        y, x = plan.grid.ys[row], plan.grid.xs[col]
        window = expected[y:y + 32, x:x + 32]
        inside = tile[:window.shape[0], :window.shape[1]]
        np.testing.assert_allclose(inside.reshape(window.shape), window, atol=2e-6)
        checked += 1
    assert checked >= 4
