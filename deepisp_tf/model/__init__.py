"""The ISP network: MobileNetV2-UNet builder, quantization-friendly blocks, cost accounting."""

from deepisp_tf.model.cost import count_params, describe, macs_per_pixel
from deepisp_tf.model.layers import custom_objects, is_fixed, quantize_scope
from deepisp_tf.model.unet import (build_model, packed_io_model, spatial_multiple,
                                   validate_config)

__all__ = [
    "build_model", "count_params", "custom_objects", "describe", "is_fixed", "macs_per_pixel",
    "packed_io_model", "quantize_scope", "spatial_multiple", "validate_config",
]
