"""deepisp_tf: a learned camera ISP, RAW Bayer mosaic to sRGB, trained in TensorFlow, run on LiteRT.

Importing the package does not import TensorFlow: the RAW math (`deepisp_tf.raw`) and the LiteRT
runtime (`deepisp_tf.runtime`) run without it. Modules that need TensorFlow import it through
`deepisp_tf.tf_env`, which pins Keras 2 (`tf_keras`) for tensorflow-model-optimization.

    import deepisp_tf
    image = deepisp_tf.render("IMG_0001.CR2")  # uint16 [H, W, 3] sRGB, the shipped model

`render`, `Renderer` and `RawReadError` load on first use (`deepisp_tf.api`).
"""

__version__ = "0.1.0"

_LAZY = {"render": "deepisp_tf.api", "Renderer": "deepisp_tf.api",
         "RenderOptions": "deepisp_tf.api", "RawReadError": "deepisp_tf.raw.io"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    """Import the API names lazily, so `import deepisp_tf` stays light."""
    if name in _LAZY:
        import importlib  # pylint: disable=import-outside-toplevel
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepisp_tf' has no attribute {name!r}")
