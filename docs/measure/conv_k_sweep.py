"""1x1 conv at 128x128, full-int8 vs float32, input channels K swept: 1 thread, min of 100
invokes, best of 3 (docs/model_speed.md §3 and §6). Needs the train extra (TFLiteConverter).

    python docs/measure/conv_k_sweep.py
"""
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from deepisp_tf.runtime import op_profile
from deepisp_tf.tf_env import keras, tf


def convert(k, n, int8):
    inp = keras.Input((128, 128, k), batch_size=1)
    out = keras.layers.Conv2D(n, 1)(inp)
    model = keras.Model(inp, out)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        rng = np.random.default_rng(0)
        conv.representative_dataset = lambda: (
            [rng.standard_normal((1, 128, 128, k), np.float32)] for _ in range(8))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


for k, n in [(8, 16), (16, 16), (32, 16), (64, 16), (128, 16), (16, 64), (64, 64), (128, 64)]:
    t = {}
    for int8 in (True, False):
        it = Interpreter(model_content=convert(k, n, int8), num_threads=1)
        it.allocate_tensors()
        t[int8] = min(op_profile.time_invoke(it, runs=100, warmup=10, statistic="min")
                      for _ in range(3))
    print(f"| {k} → {n} | {t[True]:.3f} | {t[False]:.3f} | {t[True]/t[False]:.2f} |", flush=True)
