"""The one place TensorFlow is imported, with Keras 2 selected for tensorflow-model-optimization.

tfmot 0.8 only works with Keras 2, so `TF_USE_LEGACY_KERAS=1` must be set before TensorFlow is
imported anywhere in the process. Every module that needs TensorFlow or Keras does:

    from deepisp_tf.tf_env import tf, keras
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    if "tensorflow" in __import__("sys").modules:
        raise RuntimeError(
            "TensorFlow was imported before deepisp_tf.tf_env with TF_USE_LEGACY_KERAS unset; "
            "import deepisp_tf.tf_env first (tfmot needs Keras 2).")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf  # noqa: E402  (must follow the environment set-up above)
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
