"""How a tensor stores real values: float, or int8/uint8 with a scale and zero point."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Quantization:
    """How a tensor stores real values: floats as they are, integers as
    real = (stored - zero_point) * scale.

    Attributes:
      dtype: the stored dtype (float32, int8, uint8 ...).
      scale, zero_point: the affine parameters of an integer dtype (0, 0 for floats).
    """

    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @classmethod
    def of(cls, detail: dict[str, Any]) -> "Quantization":
        """Return the quantization of an interpreter tensor detail; ValueError for an integer
        tensor without parameters."""
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            return cls(dtype)
        scale, zero_point = detail["quantization"]
        if not scale:
            raise ValueError(f"tensor {detail['name']} is {dtype} without quantization "
                             "parameters")
        return cls(dtype, float(scale), int(zero_point))

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Convert real values to the stored dtype (rounded to nearest, saturated)."""
        if self.is_float:
            return np.asarray(values, self.dtype)
        info = np.iinfo(self.dtype)
        quantized = np.round(np.asarray(values, np.float32) / np.float32(self.scale))
        return np.clip(quantized + self.zero_point, info.min, info.max).astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """Convert stored values to real float32 values."""
        if self.is_float:
            return np.asarray(values, np.float32)
        return (values.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)


FLOAT32 = Quantization(np.dtype(np.float32))


def quantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Convert float values to a tensor's dtype with its (scale, zero point); floats pass."""
    return Quantization.of(detail).quantize(values)


def dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Convert a tensor's values to float32 with its (scale, zero point)."""
    return Quantization.of(detail).dequantize(values)
