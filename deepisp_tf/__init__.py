"""deepisp_tf: a learned camera ISP, RAW Bayer mosaic to sRGB, trained in TensorFlow, run on LiteRT.

Importing the package does not import TensorFlow: the RAW math (`deepisp_tf.raw`) and the LiteRT
runtime (`deepisp_tf.runtime`) run without it. Modules that need TensorFlow import it through
`deepisp_tf.tf_env`, which pins Keras 2 (`tf_keras`) for tensorflow-model-optimization.
"""

__version__ = "0.1.0"
