"""MobileNetV2-UNet on the packed Bayer mosaic: gamma mosaic -> residual over bilinear -> RGB.

    bayer [B, H, W, 1] (white-balanced, gamma-encoded RGGB mosaic)
      --pack (fixed stride-2 conv)--> [B, H/2, W/2, 4] (R, G1, G2, B)
      --stem 3x3 conv (+ metadata bias)--> [B, H/2, W/2, stem_filters]   (finest skip)
      --MobileNetV2 encoder--> stage outputs at strides 2, 4, 8, 16, 32 of the packed mosaic
      --UNet decoder: upsample x2, add the projected skip (and a metadata bias), 3x3 block--
      --> [B, H/2, W/2, decoder_filters[-1]]
      --1x1 conv (starts at zero) + fixed bilinear demosaic of the packed mosaic, clip, fixed
        depth-to-space-->
      rgb [B, H, W, 3] in [0, 1]: white-balanced camera RGB, gamma-encoded

The network learns what a classic demosaic gets wrong; the camera's colour matrix and the output
gamma are exact functions of the file's metadata and are applied outside it
(`deepisp_tf.model.colour` in training, `deepisp_tf.raw.color.camera_to_srgb` and the runtime's
look-up tables at inference), so one network serves every camera. Everything above the packed
resolution runs at a quarter of the output pixels or fewer. The optional metadata input (camera
matrix and white-balance gains through a small MLP, added as a per-channel bias before the
ReLUs of the stem, the bottleneck and every decoder level) is off in the presets. The graph is
flat (the encoder's layers are inlined, not a nested model), fully convolutional, and contains
no global pooling, so tiles of any size that is a multiple of `spatial_multiple(config)` give
the same result as the whole image would away from the tile borders.

`build_model(..., packed_io=True)` (and `packed_io_model`, which copies a trained model's
weights into it) is the same network without the pack and depth-to-space layers: it takes the
packed planes and returns the 12 packed output channels, scaled back by a fixed 1x1 depthwise
conv (`layers.scale_channels`) after the ReLU6 clip. XNNPACK runs the two full-resolution fixed
layers badly (int8 256x256 tile, 1 thread: 2.49 ms with them, 1.60 ms without); the runtime
packs and unpacks instead.
"""

from __future__ import annotations

from typing import Any

import dataclasses

from deepisp_tf import constants
from deepisp_tf.config import ModelConfig
from deepisp_tf.model import layers, pixel_shuffle
from deepisp_tf.tf_env import keras

# Last layer of each MobileNetV2 stage; stage s ends at stride 2**s of the encoder input.
ENCODER_STAGE_OUTPUTS = (
    "expanded_conv_project_BN",   # stride 2
    "block_2_add",                # stride 4
    "block_5_add",                # stride 8
    "block_12_add",               # stride 16
    "block_16_project_BN",        # stride 32
)
INPUT_BAYER, INPUT_METADATA, OUTPUT_RGB = (constants.INPUT_BAYER, constants.INPUT_METADATA,
                                           constants.OUTPUT_RGB)


def validate_config(config: ModelConfig) -> None:
    """Raise ValueError if `config` cannot build a model (see `ModelConfig.validate`)."""
    config.validate()


def spatial_multiple(config: ModelConfig) -> int:
    """Return the number that tile height and width must be multiples of (2 ** (stages + 1))."""
    return config.spatial_multiple()


def set_batch_norm_momentum(model: keras.Model, momentum: float) -> None:
    """Set the moving-statistics momentum of every BatchNormalization layer of `model`."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def _tile_shape(config: ModelConfig,
                tile_size: int | tuple[int, int] | None) -> tuple[int | None, int | None]:
    """Return (H, W) of the `bayer` input, checked against `spatial_multiple`."""
    if tile_size is None:
        return None, None
    height, width = (tile_size, tile_size) if isinstance(tile_size, int) else tile_size
    multiple = spatial_multiple(config)
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        raise ValueError(f"tile size {height}x{width} must be positive multiples of {multiple} "
                         f"for {config.encoder_stages} encoder stages")
    return int(height), int(width)


def _encoder_stage_outputs(encoder_input: Any, config: ModelConfig) -> list[Any]:
    """Run MobileNetV2 on `encoder_input` and return its first `encoder_stages` stage outputs.

    `keras.applications.MobileNetV2(input_tensor=...)` adds its layers to the graph that
    `encoder_input` belongs to, so the model built from these tensors stays flat; layers
    after the deepest stage used (the 1280-channel head) are simply not reached.
    """
    encoder = keras.applications.MobileNetV2(
        input_tensor=encoder_input, include_top=False, weights=None, alpha=config.alpha)
    names = ENCODER_STAGE_OUTPUTS[:config.encoder_stages]
    return [encoder.get_layer(name).output for name in names]


def build_model(config: ModelConfig, tile_size: int | tuple[int, int] | None = None,
                packed_io: bool = False) -> keras.Model:
    """Build the ISP network as a flat Functional tf_keras model (no loss inside).

    Args:
      config: the model configuration.
      tile_size: side (or (H, W)) of the `bayer` input the model is built for, each a
        multiple of `spatial_multiple(config)` (64 for 5 encoder stages); None builds a model
        with dynamic spatial dimensions.
      packed_io: build the packed-IO variant of the same network (same layer names for every
        learned layer): input `bayer` [B, H/2, W/2, 4] (`cfa.pack` of the mosaic: R, G1, G2,
        B), no pack layer, and output `rgb` [B, H/2, W/2, 12] in [0, 1] in the channel order
        of `layers.depth_to_space_kernel` (no depth-to-space layer). Both run badly on
        XNNPACK at full resolution; packing and unpacking are free reshapes in numpy.

    Returns:
      A model with inputs `bayer` [B, H, W, 1] (float32 in [0, 1], white-balanced RGGB mosaic,
      red at the origin, gamma-encoded) and, when `config.use_metadata`, `metadata`
      [B, metadata_size] (camera->sRGB matrix row-major, then white-balance gains), and output
      `rgb` [B, H, W, 3] (white-balanced camera RGB, gamma-encoded, in [0, 1]).

    Raises:
      ValueError: if `config` or `tile_size` is invalid.
    """
    validate_config(config)
    height, width = _tile_shape(config, tile_size)
    if packed_io:
        half = (None, None) if height is None else (height // 2, width // 2)
        bayer = keras.Input((*half, 4), name=INPUT_BAYER)
    else:
        bayer = keras.Input((height, width, 1), name=INPUT_BAYER)
    inputs = [bayer]

    embedding = None
    if config.use_metadata:
        metadata = keras.Input((config.metadata_size,), name=INPUT_METADATA)
        inputs.append(metadata)
        embedding = keras.layers.Dense(config.metadata_units, activation="relu",
                                       name="metadata_embed")(metadata)

    def metadata_bias(channels: int, name: str) -> list[Any]:
        """Return [the [B, 1, 1, channels] metadata bias], or [] without metadata."""
        if embedding is None:
            return []
        return [layers.conditioning_bias(embedding, channels, name)]

    packed = bayer if packed_io else layers.pack_mosaic(bayer)
    stem = layers.conv_bn(packed, config.stem_filters, 3, "stem")
    stem = layers.add_relu([stem, *metadata_bias(config.stem_filters, "stem_cond")], "stem")
    skips = [stem, *_encoder_stage_outputs(stem, config)]

    x = skips.pop()
    x = layers.add_relu([x, *metadata_bias(x.shape[-1], "bottleneck_cond")], "bottleneck")
    for level, filters in enumerate(config.decoder_filters):
        name = f"decoder{level}"
        skip = keras.layers.Conv2D(filters, 1, name=f"{name}_skip")(skips.pop())
        up = layers.upsample(x, filters, config.upsampling, name)
        x = layers.add_relu([up, skip, *metadata_bias(filters, f"{name}_cond")], f"{name}_fuse")
        x = layers.conv_block(x, filters, config.decoder_block, name)
    rgb = layers.output_head(x, packed, OUTPUT_RGB, packed_io)
    model = keras.Model(inputs, rgb, name="deepisp_unet_packed" if packed_io else "deepisp_unet")
    set_batch_norm_momentum(model, config.bn_momentum)
    return model


def packed_io_model(model: keras.Model, config: ModelConfig,
                    tile: int | tuple[int, int] | None = None) -> keras.Model:
    """Return the packed-IO variant (`build_model(packed_io=True)`) of a trained float model.

    Every layer with weights is copied by name except the fixed ones (`FIXED_LAYER_NAMES`,
    built from their constants), so `depth_to_space(packed(cfa.pack(x)))` equals `model(x)`.

    Args:
      model: a float (or stripped pruned) model of `build_model(config, ...)`.
      config: its model configuration.
      tile: full-resolution (H, W) (or side) of the tile, None for dynamic.

    Returns:
      The packed-IO model, input `bayer` [B, H/2, W/2, 4], output `rgb` [B, H/2, W/2, 12].

    Raises:
      ValueError: a learned layer of the packed model is missing from `model` or its weights
        do not fit (e.g. a tfmot QAT model, whose layers are wrapped).
    """
    packed = build_model(config, tile, packed_io=True)
    for layer in packed.layers:
        if not layer.weights or layer.name in layers.FIXED_LAYER_NAMES:
            continue
        try:
            source = model.get_layer(layer.name)
            layer.set_weights(source.get_weights())
        except ValueError as error:
            raise ValueError(f"cannot copy layer {layer.name!r} into the packed-IO model: "
                             f"{error}") from None
    return packed


def with_depth_to_space_upsampling(model: keras.Model, config: ModelConfig,
                                   tile: int | tuple[int, int] | None = None
                                   ) -> tuple[keras.Model, ModelConfig]:
    """Rebuild a trained "transpose" model with "depth_to_space" upsampling, same function.

    Each decoder level's 2x2 stride-2 transposed conv (`{level}_upconv`) becomes the
    equivalent 1x1 conv to 4 * C channels (`{level}_proj`, `pixel_shuffle.weights_from_transpose`)
    and a depth-to-space; every other layer is copied by name.

    Args:
      model: a float model of `build_model(config, ...)` with `config.upsampling == "transpose"`.
      config: its model configuration.
      tile: full-resolution tile side or (H, W) of the new model, None for dynamic.

    Returns:
      (the new model, its configuration with `upsampling="depth_to_space"`).

    Raises:
      ValueError: `config.upsampling` is not "transpose".
    """
    if config.upsampling != "transpose":
        raise ValueError(f"expected a 'transpose' model, got upsampling={config.upsampling!r}")
    new_config = dataclasses.replace(config, upsampling="depth_to_space")
    converted = build_model(new_config, tile)
    for layer in converted.layers:
        if not layer.weights:
            continue
        if layer.name.endswith("_proj"):
            source = model.get_layer(layer.name[:-len("_proj")] + "_upconv")
            layer.set_weights(pixel_shuffle.weights_from_transpose(*source.get_weights()))
        else:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return converted, new_config
