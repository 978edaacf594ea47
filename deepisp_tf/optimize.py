"""tfmot after training: magnitude pruning to a target sparsity, and quantization-aware training.

Both start from a trained float model and fine-tune it briefly on the training split, through the
same tf.data pipeline and the same L1 loss as training:

    prune(model, dataset, config)              -> float model, `config.target_sparsity` of the
                                                  prunable kernels zero, wrappers stripped
    quantization_aware_train(model, dataset, config) -> tfmot QAT model (fake-quant wrappers),
                                                  ready for `deepisp_tf.export.convert_model`

Pruning wraps the layers `is_prunable` allows (Conv2D, Conv2DTranspose, Dense; depthwise
kernels stay dense) and never a fixed layer (`deepisp_tf.model.layers.is_fixed`: the one-hot
`pack_mosaic`, `rgb_bilinear` and `rgb` kernels are structure, not learned weights). QAT keeps
the same fixed kernels frozen (`quantize_aware`) and first sets the activation ranges from the
data (`init_activation_ranges`), so a short fine-tune starts from the float model's function
instead of tfmot's [-6, 6] defaults. These are the only QAT and pruning paths of the package.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator

import numpy as np

from deepisp_tf.config import DataConfig, OptimizeConfig
from deepisp_tf.data.pipeline import make_dataset
from deepisp_tf.model import colour
from deepisp_tf.model import pixel_shuffle
from deepisp_tf.model.layers import is_fixed, quantize_scope
from deepisp_tf.tf_env import keras, tf

KERNEL_NAMES = ("kernel", "depthwise_kernel")
RANGE_BATCHES = 4                  # batches that set the initial QAT activation ranges


# Layers outside tfmot's default 8-bit registry that its layout transforms handle (BatchNorm is
# folded into the preceding convolution).
_QUANTIZED_BY_TRANSFORMS = (keras.layers.InputLayer, keras.layers.BatchNormalization)


class UnsupportedLayerError(ValueError):
    """tfmot cannot quantize or prune a layer of the model; the message names the layer."""


def _unwrap(layer: keras.layers.Layer) -> keras.layers.Layer:
    """Return the layer inside tfmot pruning / quantization wrappers."""
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer


def is_prunable(layer: keras.layers.Layer) -> bool:
    """Whether magnitude pruning sparsifies `layer` (wrapped or not): the one rule for it.

    Conv2D, Conv2DTranspose and Dense kernels are pruned; depthwise kernels (DepthwiseConv2D is
    no Conv2D subclass in tf_keras) stay dense, as they are few weights that each matter a lot
    and XNNPACK's sparse inference covers only 1x1 convs; fixed layers (`layers.is_fixed`: the
    mosaic packing, the bilinear demosaic, the output unpacking) are structure and never pruned.
    """
    return (isinstance(_unwrap(layer), (keras.layers.Conv2D, keras.layers.Dense))
            and not is_fixed(layer))


def kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """Return the kernels of the prunable layers of `model` (wrapped or not), by layer name."""
    result = {}
    for layer in model.layers:
        inner = _unwrap(layer)
        if not is_prunable(inner):
            continue
        for weight in inner.weights:
            if weight.name.split("/")[-1].split(":")[0] in KERNEL_NAMES:
                result[inner.name] = weight.numpy()
    return result


def weight_sparsity(model: keras.Model) -> float:
    """Return the fraction of exactly-zero weights over all prunable kernels of `model`."""
    values = list(kernels(model).values())
    total = sum(v.size for v in values)
    return float(sum(int(np.count_nonzero(v == 0)) for v in values) / max(total, 1))


def pruning_schedule(config: OptimizeConfig) -> Any:
    """Return the PolynomialDecay schedule 0 -> target sparsity over the pruning fine-tune.

    The target is reached at `end_step`, a multiple of the update frequency no later than the
    last fine-tune step, so the final masks are applied before training stops.
    """
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel

    config.validate()
    frequency = min(config.pruning_frequency, config.prune_steps)
    last = int((config.prune_steps - 1) * config.pruning_end_fraction)
    end_step = last // frequency * frequency
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=config.target_sparsity, begin_step=0,
        end_step=end_step, frequency=frequency)


def prune_wrap(model: keras.Model, config: OptimizeConfig) -> keras.Model:
    """Return a clone of `model` whose prunable layers are wrapped by `prune_low_magnitude`."""
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel

    schedule = pruning_schedule(config)

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if not is_prunable(layer):
            return layer
        try:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        except ValueError as error:
            raise UnsupportedLayerError(f"pruning: layer {layer.name} "
                                        f"({type(layer).__name__}): {error}") from None

    # clone_model hands the clone function the layers themselves, and the wrappers reuse them:
    # wrap a weight-copied clone so fine-tuning never touches `model`.
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return keras.models.clone_model(copy, clone_function=wrap)


def fine_tune(model: keras.Model, dataset: tf.data.Dataset, steps: int, learning_rate: float,
              callbacks: tuple[Any, ...] = ()) -> float:
    """Train `model` for `steps` batches with L1 loss in sRGB and Adam; return the mean loss.

    The network outputs camera RGB; it is trained through `colour.training_model` (with
    `dataset`'s metadata), as in `deepisp_tf.training`.
    """
    trainer = colour.training_model(model)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mae")
    history = trainer.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0,
                          callbacks=list(callbacks))
    return float(history.history["loss"][-1])


def prune(model: keras.Model, dataset: tf.data.Dataset, config: OptimizeConfig
          ) -> keras.Model:
    """Prune `model` to `config.target_sparsity` while fine-tuning, then strip the wrappers.

    Args:
      model: trained float model (not modified).
      dataset: training batches (inputs dict, target), repeating.
      config: sparsity target and schedule.

    Returns:
      A float model with the original layer structure whose prunable kernels are sparse.
    """
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel

    wrapped = prune_wrap(model, config)
    fine_tune(wrapped, dataset, config.prune_steps, config.learning_rate,
              (tfmot.sparsity.keras.UpdatePruningStep(),))
    return strip_pruning(wrapped)


def strip_pruning(model: keras.Model) -> keras.Model:
    """Remove pruning wrappers, keeping the (masked) weights."""
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel

    return tfmot.sparsity.keras.strip_pruning(model)


def _annotate(model: keras.Model) -> keras.Model:
    """Return `model` with every layer annotated for QAT, custom layers with their config.

    Built-in layers get tfmot's default 8-bit configs; the package's custom layers
    (`pixel_shuffle.quantize_configs`) get their own. Raises UnsupportedLayerError for any
    other layer outside tfmot's default registry.
    """
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa
        default_8bit_quantize_registry as registry)  # pylint: disable=import-outside-toplevel

    configs = pixel_shuffle.quantize_configs()
    supports = registry.Default8BitQuantizeRegistry().supports
    unsupported = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers
                   if not isinstance(layer, _QUANTIZED_BY_TRANSFORMS)
                   and type(layer) not in configs and not supports(layer)]
    if unsupported:
        raise UnsupportedLayerError(
            "quantization-aware training: tfmot's default 8-bit scheme has no QuantizeConfig "
            f"for layer(s) {', '.join(unsupported)}; give the layer a QuantizeConfig in "
            "deepisp_tf.model.pixel_shuffle.quantize_configs or replace it")

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = configs.get(type(layer))
        if config is None:
            return layer
        return tfmot.quantization.keras.quantize_annotate_layer(layer, config)

    # The clone reuses the layer objects (and so their weights); quantize_apply copies them.
    annotated = keras.models.clone_model(model, clone_function=annotate)
    return tfmot.quantization.keras.quantize_annotate_model(annotated)


@contextlib.contextmanager
def frozen_fixed_kernels(qat_model: keras.Model) -> Iterator[int]:
    """Within the context, the fixed layers' kernels are not trainable weights of `qat_model`.

    tfmot's QuantizeWrapper lists every kernel it quantizes as trainable, whatever the inner
    layer's `trainable` says, so QAT would learn the fixed one-hot kernels (`layers.is_fixed`:
    the mosaic packing, the bilinear demosaic, the output depth-to-space or scale) and lose,
    for example, the output's [0, 1] clip. tfmot has no public switch for it, so the kernels
    are moved to the wrappers' non-trainable weights, and moved back on exit: the weight order
    of a tfmot QAT model (which `get_weights`/`set_weights` and the export's clones rely on)
    is then that of any other.

    Yields:
      The number of kernels frozen.
    """
    moved = []
    for wrapper in qat_model.layers:
        if not isinstance(wrapper, keras.layers.Wrapper) or not is_fixed(wrapper.layer):
            continue
        prefix = f"{wrapper.layer.name}/"  # the inner layer's own weights
        frozen = [w for w in wrapper._trainable_weights if w.name.startswith(prefix)]
        kept = [w for w in wrapper._trainable_weights if not w.name.startswith(prefix)]
        moved.append((wrapper, list(wrapper._trainable_weights), list(frozen)))
        wrapper._trainable_weights = kept
        wrapper._non_trainable_weights.extend(frozen)
    try:
        yield sum(len(frozen) for _, _, frozen in moved)
    finally:
        for wrapper, trainable, frozen in moved:
            wrapper._trainable_weights = trainable
            wrapper._non_trainable_weights = [w for w in wrapper._non_trainable_weights
                                              if all(w is not f for f in frozen)]


def quantize_aware(model: keras.Model) -> keras.Model:
    """Return the tfmot QAT model of `model` (default 8-bit scheme, fake-quant wrappers).

    Built-in layers use tfmot's default 8-bit configs, `pixel_shuffle.DepthToSpace` its own
    (`pixel_shuffle.quantize_configs`). Fine-tune it inside `frozen_fixed_kernels` (as
    `quantization_aware_train` does) so the fixed layers keep their weights.

    Raises:
      UnsupportedLayerError: tfmot has no quantization config for a layer (named).
    """
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel

    annotated = _annotate(model)
    with quantize_scope():
        try:
            qat_model = tfmot.quantization.keras.quantize_apply(annotated)
        except (ValueError, RuntimeError) as error:
            raise UnsupportedLayerError(f"quantization-aware training: {error}") from None
    return qat_model


def _short_name(var: tf.Variable) -> str:
    return var.name.split("/")[-1].split(":")[0]


def _is_range(var: tf.Variable) -> bool:
    """Whether `var` is a tfmot quantizer range (`*_min` / `*_max`)."""
    return _short_name(var).endswith(("_min", "_max"))


def init_activation_ranges(qat_model: keras.Model, model: keras.Model,
                           batches: Iterable[dict[str, Any]]) -> int:
    """Set the QAT activation ranges to the float model's observed min/max; return how many.

    tfmot's activation quantizers start at [-6, 6] and follow an exponential moving average
    with decay 0.999, so a short fine-tune would leave them far wider than the activations
    (and the int8 model coarse). Each wrapper's range variables (`output_*`,
    `post_activation_*`, the input `quantize_layer_*`) quantize the output of the float layer
    of the same name (the input itself for a QuantizeLayer); they get that tensor's range over
    `batches`, widened to contain 0 as the quantizer requires. Weight ranges (tfmot sets them
    from the current weights on every training-mode call, and only then) come from one
    training-mode call whose other side effects (BatchNorm moving statistics) are undone.
    """
    batches = list(batches)
    kept = [(var, var.numpy()) for var in qat_model.weights if not _is_range(var)]
    qat_model(batches[0], training=True)
    for var, value in kept:
        var.assign(value)
    targets, variables = [], []
    for layer in qat_model.layers:
        pairs = {}
        for var in layer.non_trainable_weights:
            short = _short_name(var)
            if _is_range(var) and "kernel" not in short:
                pairs.setdefault(short[:-4], {})[short[-3:]] = var
        if not pairs:
            continue
        source = layer.layer.name if isinstance(layer, keras.layers.Wrapper) else (
            layer.input.name.split(":")[0].split("/")[0])
        try:
            tensor = model.get_layer(source).output
        except ValueError:
            continue  # a layer tfmot's transforms created: keep its moving average
        for pair in pairs.values():
            targets.append(tensor)
            variables.append((pair["min"], pair["max"]))
    probe = keras.Model(model.inputs, targets)
    low = np.full(len(targets), np.inf)
    high = np.full(len(targets), -np.inf)
    for inputs in batches:
        for index, value in enumerate(probe(inputs, training=False)):
            low[index] = min(low[index], float(tf.reduce_min(value)))
            high[index] = max(high[index], float(tf.reduce_max(value)))
    for (min_var, max_var), lo, hi in zip(variables, low, high):
        if np.isfinite(lo):
            min_var.assign(min(lo, 0.0))
            max_var.assign(max(hi, 0.0, min(lo, 0.0) + 1e-6))
    return int(np.isfinite(low).sum())


def quantization_aware_train(model: keras.Model, dataset: tf.data.Dataset,
                             config: OptimizeConfig) -> keras.Model:
    """Quantize `model` for QAT, start its ranges from the data, fine-tune `qat_steps` steps.

    The fixed kernels stay as built (`frozen_fixed_kernels`).
    """
    qat_model = quantize_aware(model)
    init_activation_ranges(qat_model, model,
                           (inputs for inputs, _ in dataset.take(RANGE_BATCHES)))
    with frozen_fixed_kernels(qat_model):
        fine_tune(qat_model, dataset, config.qat_steps, config.learning_rate)
    return qat_model


def train_dataset(data_dir: str, data: DataConfig, config: OptimizeConfig) -> tf.data.Dataset:
    """Return the repeating training batches the fine-tunes use (the training pipeline)."""
    return make_dataset(data_dir, "train", data, config.batch_size, training=True)
