"""Typed configuration: dataclasses for every stage, and the named presets users run.

Camera constants and render settings live here (and in the manifests written from them), never
inside the functions that use them. Presets are built by named functions in `PRESETS`; each one
documents the command that runs it, and `tests/test_config.py` validates every preset.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Callable

from deepisp_tf import config_grammar, constants

# The reference render: DESIGN.md §2.1. Everything not listed stays at rawpy's default
# (AHD demosaic, sRGB primaries, BT.709 gamma (2.222, 4.5), highlight clip).
REFERENCE_RENDER_SETTINGS: dict[str, Any] = {
    "use_camera_wb": True,
    "no_auto_bright": True,
    "output_bps": 16,
    "user_flip": 0,
}
REFERENCE_RENDER_DEFAULTS_NOTE = (
    "all other rawpy.postprocess settings at defaults: AHD demosaic, sRGB output colour space, "
    "gamma (2.222, 4.5), highlight clip")

# XYZ(D65) -> camera matrices (Adobe DNG ColorMatrix2-style, rows sum roughly to the white point)
# of a few real sensors. The synthetic generator draws random convex combinations of them, as in
# Brooks et al. 2019, so the network sees a spread of plausible camera colour responses.
CAMERA_XYZ_MATRICES: dict[str, tuple[float, ...]] = {
    "canon_eos_5d_mark_iii": (0.6722, -0.0635, -0.0963, -0.4287, 1.2460, 0.2028,
                              -0.0908, 0.2162, 0.5668),
    "canon_eos_550d": (0.6941, -0.1164, -0.0857, -0.3825, 1.1597, 0.2534,
                       -0.0416, 0.1540, 0.6039),
    "nikon_d700": (0.8139, -0.2171, -0.0663, -0.8747, 1.6541, 0.2295,
                   -0.1925, 0.2008, 0.8093),
    "sony_a7": (0.5271, -0.0712, -0.0347, -0.6153, 1.3653, 0.2763,
                -0.1601, 0.2366, 0.7242),
}


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How natural sRGB photos are 'unprocessed' into RAW DNG files (Brooks et al. 2019)."""

    seed: int = 0
    variants_per_image: int = 2        # DNGs per source photo (different cameras / patterns)
    max_side: int = 768                # longer side of a synthetic frame, pixels (even)
    min_side: int = 320                # shorter side (even): >= data.tile_size + 2 * border
    white_level: int = 4095            # 12-bit sensor
    black_level_range: tuple[int, int] = (64, 256)
    red_gain_range: tuple[float, float] = (1.9, 2.4)
    blue_gain_range: tuple[float, float] = (1.5, 1.9)
    exposure_gain_mean: float = 0.8    # 1 / overall brightness gain ~ N(mean, std)
    exposure_gain_std: float = 0.1
    log_shot_noise_range: tuple[float, float] = (-9.2, -6.5)   # ln(shot noise variance factor)
    read_noise_slope: float = 2.18     # ln(read) = slope * ln(shot) + intercept + N(0, std)
    read_noise_intercept: float = 1.20
    read_noise_std: float = 0.26
    camera_matrices: tuple[str, ...] = tuple(CAMERA_XYZ_MATRICES)
    # Extra folders of photos (.jpg/.jpeg/.png, sorted by name) after the packaged ones, e.g.
    # Debian's mate-backgrounds: ("/usr/share/backgrounds/mate/nature",).
    photo_dirs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Dataset preparation (RAW files -> tiles in TFRecord shards) and the tf.data pipeline."""

    tile_size: int = 256               # stored tile side (even); crops are cut from it
    tile_stride: int = 256             # stride between stored tiles (even)
    max_tiles_per_file: int = 64       # evenly spread subset when a file yields more
    border: int = 8                    # pixels skipped at every edge (demosaic edge effects)
    crop_size: int = 128               # training crop side (even, <= tile_size - 2)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    shuffle_buffer: int = 512
    augment: bool = True               # Bayer-preserving flips and transposes
    seed: int = 0

    def validate(self) -> None:
        for name in ("tile_size", "tile_stride", "crop_size", "border"):
            value = getattr(self, name)
            if value < 0 or value % 2 or (value == 0 and name != "border"):
                raise ValueError(f"DataConfig.{name} must be positive and even, got {value}")
        if self.crop_size > self.tile_size - 2:
            raise ValueError(
                f"DataConfig.crop_size ({self.crop_size}) must be <= tile_size - 2 "
                f"({self.tile_size - 2}): Bayer-preserving flips need a one-pixel margin")
        if not 0 <= self.val_fraction + self.test_fraction < 1:
            raise ValueError("val_fraction + test_fraction must be in [0, 1)")


UPSAMPLING_MODES = ("transpose", "depth_to_space", "bilinear", "nearest")
DECODER_BLOCKS = ("separable", "conv")
MAX_ENCODER_STAGES = 5                 # MobileNetV2 stages with an output at stride 2, 4, ..., 32


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """MobileNetV2-UNet on the packed mosaic (deepisp_tf/model/unet.py draws the layout)."""

    alpha: float = 0.35                # MobileNetV2 width multiplier
    encoder_stages: int = 5            # MobileNetV2 stages used; stage s ends at stride 2**s of
                                       # the packed mosaic, so tiles are multiples of 2**(s+1)
    stem_filters: int = 16             # 3x3 conv on the packed mosaic: encoder input, finest skip
    decoder_filters: tuple[int, ...] = (64, 48, 32, 24, 16)   # one per stage, deepest first;
                                       # the last level runs at the packed (half) resolution
    decoder_block: str = "separable"   # "separable" (depthwise + pointwise) or "conv" (dense 3x3)
    metadata_units: int = 32           # metadata MLP width (its output biases every level)
    use_metadata: bool = False         # condition the network on the metadata too (colour
                                       # itself is applied outside it: model/colour.py)
    upsampling: str = "transpose"      # UPSAMPLING_MODES; "depth_to_space" is ~2x faster in int8
                                       # (docs/model_speed.md); int8 LiteRT 2.3 does not delegate
                                       # RESIZE_NEAREST_NEIGHBOR to XNNPACK
    bn_momentum: float = 0.99          # every BatchNormalization, MobileNetV2's included (its
                                       # 0.999 lags for thousands of steps in short runs)

    @property
    def metadata_size(self) -> int:
        """Length of the `metadata` input: the data format's (`constants.METADATA_SIZE`)."""
        return constants.METADATA_SIZE

    def spatial_multiple(self) -> int:
        """Return the number tile height and width must be multiples of: 2 ** (stages + 1)."""
        return constants.spatial_multiple(self.encoder_stages)

    def validate(self) -> None:
        """Raise ValueError if this configuration cannot build a model."""
        if self.alpha <= 0:
            raise ValueError(f"ModelConfig.alpha must be positive, got {self.alpha}")
        if not 1 <= self.encoder_stages <= MAX_ENCODER_STAGES:
            raise ValueError(f"ModelConfig.encoder_stages must be in [1, {MAX_ENCODER_STAGES}], "
                             f"got {self.encoder_stages}")
        if len(self.decoder_filters) != self.encoder_stages:
            raise ValueError(
                f"ModelConfig.decoder_filters needs one entry per encoder stage "
                f"({self.encoder_stages}), got {self.decoder_filters}")
        widths = (self.stem_filters, self.metadata_units, *self.decoder_filters)
        if any(int(width) <= 0 for width in widths):
            raise ValueError(f"ModelConfig filter counts must be positive, got {widths}")
        if self.upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"ModelConfig.upsampling must be one of {UPSAMPLING_MODES}, "
                             f"got {self.upsampling!r}")
        if self.decoder_block not in DECODER_BLOCKS:
            raise ValueError(f"ModelConfig.decoder_block must be one of {DECODER_BLOCKS}, "
                             f"got {self.decoder_block!r}")
        if not 0 <= self.bn_momentum < 1:
            raise ValueError(f"ModelConfig.bn_momentum must be in [0, 1), got {self.bn_momentum}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule and logging of `tools.train` (deepisp_tf/training/)."""

    batch_size: int = 8                # global batch (split over replicas)
    epochs: int = 20
    steps_per_epoch: int = 200
    validation_steps: int = 20         # at most this many validation batches per epoch
    learning_rate: float = 1e-3        # Adam, decayed exponentially (smoothly) per step
    decay_rate: float = 0.5            # learning-rate factor per `decay_epochs`
    decay_epochs: int = 5
    ssim_weight: float = 0.0           # loss = L1 + ssim_weight * (1 - SSIM)
    image_summaries: int = 3           # validation tiles shown in TensorBoard every epoch
    seed: int = 0                      # weight initialisation

    def validate(self) -> None:
        """Raise ValueError if this configuration cannot train."""
        for name in ("batch_size", "epochs", "steps_per_epoch", "validation_steps",
                     "decay_epochs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got "
                                 f"{getattr(self, name)}")
        if self.learning_rate <= 0 or not 0 < self.decay_rate <= 1:
            raise ValueError(f"TrainConfig.learning_rate must be positive and decay_rate in "
                             f"(0, 1], got {self.learning_rate}, {self.decay_rate}")
        if self.ssim_weight < 0 or self.image_summaries < 0:
            raise ValueError("TrainConfig.ssim_weight and image_summaries must be >= 0")


@dataclasses.dataclass(frozen=True)
class OptimizeConfig:
    """tfmot fine-tuning after training: magnitude pruning and quantization-aware training."""

    target_sparsity: float = 0.5       # fraction of zero kernel weights in prunable layers
    prune_steps: int = 300             # fine-tune steps with pruning (PolynomialDecay 0 -> target)
    pruning_frequency: int = 20        # steps between mask updates
    pruning_end_fraction: float = 0.7  # the target is reached at this fraction of prune_steps
    qat_steps: int = 300               # quantization-aware fine-tune steps
    learning_rate: float = 1e-4        # Adam, constant, for both fine-tunes
    batch_size: int = 8

    def validate(self) -> None:
        """Raise ValueError if these fine-tune settings cannot run."""
        if not 0.0 <= self.target_sparsity < 1.0:
            raise ValueError(f"OptimizeConfig.target_sparsity must be in [0, 1), got "
                             f"{self.target_sparsity}")
        if min(self.prune_steps, self.qat_steps, self.pruning_frequency, self.batch_size) < 1:
            raise ValueError("OptimizeConfig steps, pruning_frequency and batch_size must be >= 1")
        if not 0.0 < self.pruning_end_fraction <= 1.0:
            raise ValueError("OptimizeConfig.pruning_end_fraction must be in (0, 1]")


# The one list of export variants: name -> (source model, conversion mode). Sources: the trained
# "float" model, its "pruned" fine-tune (stripped) or its "qat" fine-tune; modes are the
# conversions of `deepisp_tf.export.convert.convert_model`.
EXPORT_VARIANTS: dict[str, tuple[str, str]] = {
    "float32": ("float", "float32"), "float16": ("float", "float16"),
    "dynamic": ("float", "dynamic"), "int8": ("float", "int8"),
    "int8_per_tensor": ("float", "int8_per_tensor"), "qat_int8": ("qat", "qat"),
    "pruned": ("pruned", "float32"), "pruned_int8": ("pruned", "int8"),
    "pruned_int8_per_tensor": ("pruned", "int8_per_tensor"),
    "pruned_int8_sparse": ("pruned", "int8_sparse"),
    # int8 trunk, float output head (residual conv, bilinear, add, clip): packed IO only.
    "int8_float_head": ("float", "int8_float_head"),
    "int8_per_tensor_float_head": ("float", "int8_per_tensor_float_head"),
}
PACKED_ONLY_VARIANTS = ("int8_float_head", "int8_per_tensor_float_head")
INT8_IO_TYPES = ("float", "int8", "uint8")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """TFLite conversion and the report that proves each variant (tools.convert_tflite).

    Every export converts first at the scored shape, which the preset derives from its tiles
    (`ExperimentConfig.scored_export_shape`: validation tiles are cut at that size, so every
    variant gets PSNR/SSIM through LiteRT); `extra_shapes` are converted too, not scored.
    """

    variants: tuple[str, ...] = tuple(v for v in EXPORT_VARIANTS if v not in PACKED_ONLY_VARIANTS)
    extra_shapes: tuple[tuple[int, int], ...] = ()   # (H, W) after the scored shape
    int8_io: str = "float"             # IO dtype of the int8 variants: float, int8 or uint8
    representative_samples: int = 64   # calibration tiles from the training pipeline
    eval_tiles: int = 32               # validation tiles for PSNR/SSIM through LiteRT
    latency_runs: int = 20             # timed invokes per 256x256 tile-equivalent (after warm-up)
    threads: int = 2                   # LiteRT CPU threads for latency
    max_psnr_drop_db: float = 0.3      # quality budget of the recommendation (vs Keras float)
    # Write packed-IO models (<variant>_packed_<H>x<W>.tflite): input `bayer` [1, H/2, W/2, 4]
    # (`cfa.pack`), output `rgb` [1, H/2, W/2, 12] (depth-to-space order); `Runner` packs and
    # unpacks. XNNPACK runs the in-model pack and depth-to-space convs badly at full resolution.
    packed_io: bool = False

    def validate(self) -> None:
        """Raise ValueError for unknown variants or IO types, empty shapes or counts < 1."""
        unknown = sorted(set(self.variants) - set(EXPORT_VARIANTS))
        if unknown or not self.variants:
            raise ValueError(f"unknown export variants {unknown}; choose from "
                             f"{', '.join(EXPORT_VARIANTS)}")
        packed_only = [v for v in self.variants if v in PACKED_ONLY_VARIANTS]
        if packed_only and not self.packed_io:
            raise ValueError(f"export variants {packed_only} need packed IO "
                             "(export.packed_io=true)")
        if self.int8_io not in INT8_IO_TYPES:
            raise ValueError(f"ExportConfig.int8_io must be one of {INT8_IO_TYPES}, got "
                             f"{self.int8_io!r}")
        if any(len(shape) != 2 or min(shape) < 1 for shape in self.extra_shapes):
            raise ValueError(f"ExportConfig.extra_shapes must be (H, W) pairs, got "
                             f"{self.extra_shapes}")
        if min(self.representative_samples, self.eval_tiles, self.latency_runs,
               self.threads) < 1:
            raise ValueError("ExportConfig counts (samples, tiles, runs, threads) must be >= 1")
        if self.max_psnr_drop_db < 0:
            raise ValueError(f"ExportConfig.max_psnr_drop_db must be >= 0, got "
                             f"{self.max_psnr_drop_db}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything one run needs, from preparation to export; saved next to the trained model."""

    name: str
    description: str
    command: str                       # the command that runs this preset
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    export: ExportConfig = ExportConfig()

    def scored_export_shape(self) -> tuple[int, int]:
        """Return the (S, S) every export converts and scores first.

        S is the largest multiple of the model's spatial multiple that a validation crop of the
        stored tiles can have (`data.tile_size - 2`, the crop bound of `DataConfig`).

        Raises:
          ValueError: the tiles are smaller than one spatial multiple.
        """
        multiple = self.model.spatial_multiple()
        size = (self.data.tile_size - 2) // multiple * multiple
        if size < multiple:
            raise ValueError(f"{self.name}: data.tile_size ({self.data.tile_size}) leaves no "
                             f"validation crop that is a multiple of {multiple}")
        return size, size

    def export_shapes(self) -> tuple[tuple[int, int], ...]:
        """Return every (H, W) the export converts: the scored shape, then `extra_shapes`."""
        first = self.scored_export_shape()
        return (first, *(tuple(s) for s in self.export.extra_shapes if tuple(s) != first))

    def validate(self) -> None:
        """Raise ValueError (naming the preset) if any stage of this run cannot work."""
        self.data.validate()
        if self.synthetic.min_side < self.data.tile_size + 2 * self.data.border:
            raise ValueError(
                f"{self.name}: synthetic.min_side ({self.synthetic.min_side}) must be >= "
                f"data.tile_size + 2 * data.border ({self.data.tile_size + 2 * self.data.border})"
                " so every synthetic frame yields tiles")
        self.model.validate()
        self.train.validate()
        self.optimize.validate()
        self.export.validate()
        multiple = self.model.spatial_multiple()
        if self.data.crop_size % multiple:
            raise ValueError(f"{self.name}: data.crop_size ({self.data.crop_size}) must be a "
                             f"multiple of {multiple} for {self.model.encoder_stages} encoder "
                             f"stages")
        bad = [list(shape) for shape in self.export_shapes()
               if shape[0] % multiple or shape[1] % multiple]
        if bad:
            raise ValueError(f"{self.name}: export shapes {bad} are not multiples of {multiple}, "
                             f"which the model ({self.model.encoder_stages} encoder stages) needs")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExperimentConfig":
        """Build from `to_dict` output (JSON lists become tuples; absent sections: defaults)."""
        model = dict(values.get("model", {}))
        legacy_size = model.pop("metadata_size", constants.METADATA_SIZE)  # saved before 2026-12
        if legacy_size != constants.METADATA_SIZE:
            raise ValueError(f"model.metadata_size {legacy_size} differs from the data format's "
                             f"{constants.METADATA_SIZE}")
        return cls(
            name=values["name"], description=values["description"], command=values["command"],
            data=config_grammar.from_dict(DataConfig, values.get("data", {})),
            model=config_grammar.from_dict(ModelConfig, model),
            train=config_grammar.from_dict(TrainConfig, values.get("train", {})),
            synthetic=config_grammar.from_dict(SyntheticConfig, values.get("synthetic", {})),
            optimize=config_grammar.from_dict(OptimizeConfig, values.get("optimize", {})),
            export=config_grammar.from_dict(ExportConfig, values.get("export", {})),
        )


# The sections an override can name: section -> its dataclass.
SECTIONS: dict[str, type] = {name: hint for name, hint in
                             typing.get_type_hints(ExperimentConfig).items()
                             if dataclasses.is_dataclass(hint)}


def override(config: ExperimentConfig, assignments: list[str] | tuple[str, ...]
             ) -> ExperimentConfig:
    """Return `config` with `section.field=value` assignments applied, validated.

    The one override grammar of every tool (`--override`, deepisp_tf/config_flags.py) and of
    library callers. Example: `override(cfg, ["train.epochs=2", "export.int8_io=uint8"])`.

    Raises:
      ValueError: a malformed assignment, an unknown section or field, a value of the wrong
        type (each naming the assignment), or a configuration that does not validate.
    """
    values = config.to_dict()
    for assignment in assignments:
        section, field, value = config_grammar.parse_assignment(assignment, SECTIONS)
        if field not in values[section]:
            raise ValueError(f"override {assignment!r}: {section} has no field {field!r}; "
                             f"fields: {', '.join(values[section])}")
        try:
            hint = typing.get_type_hints(SECTIONS[section])[field]
            values[section][field] = config_grammar.typed(value, hint, f"{section}.{field}")
        except ValueError as error:
            raise ValueError(f"override {assignment!r}: {error}") from None
    result = ExperimentConfig.from_dict(values)
    result.validate()
    return result


def deploy_export(variants: tuple[str, ...]) -> ExportConfig:
    """Export `variants` in the form the shipped model has: 256x256 tiles, packed IO, int8 IO."""
    return ExportConfig(variants=variants, extra_shapes=((256, 256),), int8_io="int8",
                        packed_io=True)


def quickstart() -> ExperimentConfig:
    return ExperimentConfig(
        name="quickstart",
        description="Tiny model that trains in a few minutes on 2 CPU cores on the synthetic set.",
        command=("python -m tools.train --config=quickstart --data=runs/quickstart/data "
                 "--workdir=runs/quickstart/train"),
        data=DataConfig(tile_size=130, tile_stride=128, crop_size=128, max_tiles_per_file=24),
        model=ModelConfig(alpha=0.35, encoder_stages=4, decoder_filters=(32, 24, 16, 16),
                          bn_momentum=0.9, upsampling="depth_to_space"),
        train=TrainConfig(batch_size=16, epochs=12, steps_per_epoch=100, validation_steps=8,
                          learning_rate=3e-3, decay_epochs=3),
        synthetic=SyntheticConfig(variants_per_image=4),   # 40 DNGs: colour/noise variety
        export=deploy_export(("float32", "int8")),
    )


def default() -> ExperimentConfig:
    return ExperimentConfig(
        name="default",
        description=("The shipped model: the synthetic set plus real RAW files, whole cameras "
                     "held out for validation and test (README, model card)."),
        command=("python -m tools.train --config=default "
                 "--data=runs/default/real,runs/default/synth --workdir=runs/default/train"),
        data=DataConfig(tile_size=130, tile_stride=64, crop_size=128, max_tiles_per_file=400),
        model=ModelConfig(alpha=0.35, encoder_stages=4, decoder_filters=(48, 32, 24, 16),
                          bn_momentum=0.9, upsampling="depth_to_space"),
        train=TrainConfig(batch_size=16, epochs=20, steps_per_epoch=100, validation_steps=16,
                          learning_rate=3e-3, decay_epochs=5),
        synthetic=SyntheticConfig(variants_per_image=8),   # 80 DNGs
        export=ExportConfig(extra_shapes=((256, 256),)),
    )


def finetune() -> ExperimentConfig:
    shipped = default()
    return dataclasses.replace(
        shipped,
        name="finetune",
        description=("Fine-tune the shipped model (--init_from=default) on a few RAW files of one "
                     "camera: its architecture and tiles, a short low-rate schedule (minutes on "
                     "2 CPU cores)."),
        command=("python -m tools.train --config=finetune --init_from=default "
                 "--data=runs/mine/data --workdir=runs/mine/train"),
        data=dataclasses.replace(shipped.data, tile_stride=32, max_tiles_per_file=800),
        train=TrainConfig(batch_size=16, epochs=6, steps_per_epoch=50, validation_steps=8,
                          learning_rate=3e-4, decay_rate=0.5, decay_epochs=3),
        export=deploy_export(("float32", "float16", "int8", "int8_per_tensor_float_head")),
    )


def zrr() -> ExperimentConfig:
    return ExperimentConfig(
        name="zrr",
        description=("Zurich RAW-to-RGB (PyNET protocol): Huawei P20 mosaic -> Canon 5D Mark IV "
                     "JPEG, 448x448 patches, no camera metadata."),
        command=("python -m tools.train --config=zrr --data=runs/zrr/data "
                 "--workdir=runs/zrr/train"),
        data=DataConfig(tile_size=448, tile_stride=448, crop_size=256, max_tiles_per_file=1,
                        val_fraction=0.0, test_fraction=0.0),
        model=ModelConfig(alpha=0.5),
        train=TrainConfig(batch_size=16, epochs=30, steps_per_epoch=1000, validation_steps=50),
        synthetic=SyntheticConfig(min_side=464),   # only if synthetic data is mixed in
        export=ExportConfig(extra_shapes=((448, 448),)),   # PyNET's whole patches
    )


# The preset every tool's --config defaults to (deepisp_tf/config_flags.py): it runs anywhere
# in minutes, and it is what `tools.quickstart` trains.
DEFAULT_PRESET = "quickstart"
PRESETS: dict[str, Callable[[], ExperimentConfig]] = {
    "quickstart": quickstart,
    "default": default,
    "finetune": finetune,
    "zrr": zrr,
}


def get_preset(name: str) -> ExperimentConfig:
    """Return the named preset, validated."""
    if name not in PRESETS:
        raise ValueError(f"unknown config {name!r}; presets: {', '.join(sorted(PRESETS))}")
    config = PRESETS[name]()
    config.validate()
    return config
