"""The classic pipeline reproduces LibRaw's LINEAR render on every real RAW sample (>= 50 dB).

`deepisp_tf.raw.classic.render` uses only the record's metadata (LibRaw's per-site white
balance, levels, colour matrix, gamma and stretch) around a bilinear demosaic, so it must match
rawpy's `postprocess(demosaic_algorithm=LINEAR, use_camera_wb=True, no_auto_bright=True,
output_bps=16, user_flip=0)` (DESIGN §2.1 with LINEAR) within a fraction of a code value.
"""

import os

import pytest
import rawpy

from conftest import RAW_SAMPLES
from deepisp_tf import metrics
from deepisp_tf.raw import classic, io

LINEAR = {"demosaic_algorithm": rawpy.DemosaicAlgorithm.LINEAR}

# PSNR (dB, DESIGN §2.3: [0, 1], 8-px border cropped) measured with tools/libraw_fidelity.py
# (rawpy 0.28, LibRaw 0.22.2); before this fix in brackets.
MEASURED = {
    "artefactual_archivematica-sampledata__RAW_CANON_S30.CRW": 87.83,  # [77.19] site blacks
    "colinleroy_a2tools__Image__1.qtk": 84.58,  # [64.37] greens balanced separately
    "colinleroy_a2tools__Image__2.qtk": 86.87,  # [74.91]
    "colinleroy_a2tools__raw_Image_04.qtk": 83.58,  # [77.03]
    "luca-git-99_exo-project__NIKON_UB20_O35.NEF": 83.76,  # [44.84] stretch repeats rows
    "minhtcai_camera__test.dng": 92.75,  # [35.20] auto-WB per site
    "syoyo_tinydng__colorchart.dng": 81.36,  # [81.36]
    "thorsted_digicam_corpus__DC120_P003908.KDC": 86.93,  # [30.31] Kodak tag 37400 rgb_cam
    "thorsted_digicam_corpus__DC120_P003916.KDC": 85.89,  # [24.71]
    "thorsted_digicam_corpus__PowerShotG2_CRW_0304.CRW": 86.19,  # [86.19]
    "thorsted_digicam_corpus__PowerShotG2_CRW_0313.CRW": 84.65,  # [84.65]
    "thorsted_digicam_corpus__PowerShotS40_CRW_0101.CRW": 85.09,  # [85.09]
    "thorsted_digicam_corpus__PowerShotS40_CRW_0117.CRW": 84.60,  # [84.60]
    "thorsted_digicam_corpus__PowerShotS40_CRW_0119.CRW": 87.61,  # [87.61]
}


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_classic_real_file_matches_libraw_linear_above_50db(name):
    path = os.path.join(RAW_SAMPLES, name)
    if not os.path.isfile(path):
        pytest.skip(f"real RAW sample {name} not found in {RAW_SAMPLES}")
    record, linear = io.read_raw(path, with_reference=True, render_settings=LINEAR)
    psnr = metrics.psnr(linear, classic.render(record))
    assert psnr >= 50.0, f"{name}: {psnr:.2f} dB (measured {MEASURED[name]:.2f})"
    # Within 1 dB of the figure measured when this test was written: a regression shows.
    assert psnr >= MEASURED[name] - 1.0, f"{name}: {psnr:.2f} dB < {MEASURED[name]:.2f} - 1"
