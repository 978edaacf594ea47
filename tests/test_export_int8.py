"""int8 size and quality: compaction changes bytes, not outputs; the float-head modes keep only
the output head in float, run as one XNNPACK partition and match the Keras model.

On the tiny trained model of tests/test_optimize.py (packed IO, 32x32 tiles -> [1, 16, 16, 4]
in, [1, 16, 16, 12] out). Tolerance: the float-head int8 tile's LiteRT output against the Keras
float model on the validation tiles is at least `FLOAT_HEAD_MIN_PSNR_DB` = 45 dB PSNR (measured
56.9 dB; the int8 output's own rounding, steps of 1/255, caps it near 59 dB); compaction is
exact (array_equal) on XNNPACK and on LiteRT's builtin kernels. ~50 s on 2 CPU cores.
"""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import test_optimize as tiny
from test_export import psnr
from deepisp_tf.export import calibration, compact, convert, float_head
from deepisp_tf.runtime import op_profile
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.tf_env import keras
from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=C0411  (after tf_env)

SIDE = tiny.CROP
FLOAT_HEAD_MIN_PSNR_DB = 45.0
COMPACTED_MODES = ("float32", "float16", "int8", "int8_sparse", "int8_float_head",
                   "int8_per_tensor_float_head")
HEAD_OPS = ["CONV_2D", "CONV_2D", "ADD", "DEPTHWISE_CONV_2D"]   # residual, bilinear, add, scale


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny.write_dataset(tmp_path_factory.mktemp("int8_data"), {"train": 16, "val": 4})


@pytest.fixture(scope="module")
def trained(data_dir):
    return tiny.train_tiny(data_dir, steps=30)


@pytest.fixture(scope="module")
def packed(trained):
    return convert.packed_fixed_model(trained, tiny.TINY.model, SIDE, SIDE)


@pytest.fixture(scope="module")
def representative(data_dir):
    samples = convert.pack_samples(calibration.representative_samples(
        data_dir, tiny.TINY, 8, (SIDE, SIDE), False))
    return lambda: iter(samples)


@pytest.fixture(scope="module")
def uncompacted(packed, representative):
    """{mode: the converter's own (uncompacted) flatbuffer}, int8 IO for the integer modes."""
    return {mode: convert.convert_model(
        packed, mode, representative, "int8" if mode in convert.INTEGER_MODES else "float",
        compact=False) for mode in COMPACTED_MODES}


def interpreter(content: bytes, builtin: bool = False) -> Interpreter:
    """An allocated interpreter: XNNPACK (LiteRT's default) or the builtin kernels only."""
    kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin else OpResolverType.AUTO
    result = Interpreter(model_content=content, num_threads=1,
                         experimental_op_resolver_type=kind)
    result.allocate_tensors()
    return result


def outputs(content: bytes, builtin: bool, seed: int = 0) -> list[np.ndarray]:
    """The stored outputs of a model for 3 random inputs (full dtype range for integers)."""
    model = interpreter(content, builtin)
    detail = model.get_input_details()[0]
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(3):
        if np.issubdtype(detail["dtype"], np.integer):
            info = np.iinfo(detail["dtype"])
            values = rng.integers(info.min, info.max, detail["shape"], endpoint=True)
        else:
            values = rng.uniform(0, 1, detail["shape"])
        model.set_tensor(detail["index"], values.astype(detail["dtype"]))
        model.invoke()
        results.append(model.get_tensor(model.get_output_details()[0]["index"]).copy())
    return results


def signature(content: bytes) -> dict:
    return interpreter(content)._get_full_signature_list()  # pylint: disable=W0212


@pytest.mark.parametrize("mode", COMPACTED_MODES)
def test_compaction_is_smaller_keeps_signature_and_gives_bit_identical_outputs(uncompacted,
                                                                              mode):
    original = uncompacted[mode]
    compacted = compact.compact_flatbuffer(original)
    assert len(compacted) < len(original)
    assert signature(compacted) == signature(original)
    for builtin in (False, True):
        for got, want in zip(outputs(compacted, builtin), outputs(original, builtin)):
            np.testing.assert_array_equal(got, want)


def test_compaction_keeps_only_io_tensor_names_and_shares_equal_zero_point_vectors(
        uncompacted):
    original = uncompacted["int8"]
    compacted = compact.compact_flatbuffer(original)
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(compacted)).subgraphs[0]
    io = {int(i) for i in graph.inputs} | {int(i) for i in graph.outputs}
    assert [i for i, t in enumerate(graph.tensors) if t.name] == sorted(io)
    # Per-channel zero points: every [C] array is there (the loader needs one per scale),
    # but equal ones are stored once: the saving exceeds the names and all duplicate arrays.
    before = flatbuffer_utils.read_model_from_bytearray(bytearray(original)).subgraphs[0]
    names = sum(len(t.name) for i, t in enumerate(before.tensors) if i not in io)
    zero_points = [t.quantization.zeroPoint for t in before.tensors
                   if t.quantization is not None and t.quantization.zeroPoint is not None]
    distinct = {z.tobytes() for z in zero_points}
    duplicate_bytes = 8 * sum(z.size for z in zero_points) - sum(len(z) for z in distinct)
    assert len(original) - len(compacted) >= names + duplicate_bytes
    for tensor in graph.tensors:
        if tensor.quantization is not None and tensor.quantization.scale is not None:
            assert len(tensor.quantization.zeroPoint) == len(tensor.quantization.scale)


def test_convert_model_compacts_by_default(packed, uncompacted):
    assert convert.convert_model(packed, "float32") == compact.compact_flatbuffer(
        uncompacted["float32"])


@pytest.mark.parametrize("mode", convert.FLOAT_HEAD_MODES)
def test_float_head_mode_has_float_ops_only_at_the_head_in_one_xnnpack_partition(
        uncompacted, mode):
    content = compact.compact_flatbuffer(uncompacted[mode])
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    ops = [(flatbuffer_utils.opcode_to_name(model, op.opcodeIndex),
            flatbuffer_utils.type_to_name(graph.tensors[op.outputs[0]].type))
           for op in graph.operators]
    float_ops = sorted(name for name, dtype in ops if dtype == "FLOAT32"
                       and name != "DEQUANTIZE")
    assert float_ops == sorted(HEAD_OPS)
    # The int8 input dequantized for the bilinear conv, the trunk's features for the residual
    # conv; one QUANTIZE of the float result to the int8 output, as the graph's last op.
    assert [name for name, _ in ops].count("DEQUANTIZE") == 2
    assert ops[-1] == ("QUANTIZE", "INT8")
    assert [name for name, _ in ops].count("QUANTIZE") == 1
    trunk = [dtype for name, dtype in ops if name not in ("DEQUANTIZE", "QUANTIZE")]
    assert trunk.count("INT8") == len(trunk) - len(HEAD_OPS)
    assert op_profile.delegation(interpreter(content)) == (1, ())


@pytest.mark.parametrize("mode", convert.FLOAT_HEAD_MODES)
def test_float_head_int8_io_is_quantized_on_the_contract_range_not_the_samples(
        uncompacted, representative, mode):
    # The calibration mosaics span less than [0, 1]: their own range would give other params.
    planes = np.concatenate([sample[0].ravel() for sample in representative()])
    assert planes.min() > 0.01 and planes.max() < 0.99
    model = interpreter(uncompacted[mode])
    for detail in (model.get_input_details()[0], model.get_output_details()[0]):
        scale, zero_point = detail["quantization"]
        assert detail["dtype"] == np.int8 and zero_point == -128     # 0.0 -> -128
        np.testing.assert_allclose(scale * 255, 1.0, rtol=1e-6)      # 1.0 -> 127


def test_per_tensor_float_head_stores_one_weight_scale_per_kernel(uncompacted):
    model = flatbuffer_utils.read_model_from_bytearray(
        bytearray(uncompacted["int8_per_tensor_float_head"]))
    graph = model.subgraphs[0]
    int8_weights = [graph.tensors[op.inputs[1]] for op in graph.operators
                    if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) in
                    ("CONV_2D", "DEPTHWISE_CONV_2D")
                    and graph.tensors[op.inputs[1]].type == 9]  # TensorType.INT8
    assert int8_weights and all(len(t.quantization.scale) == 1 for t in int8_weights)


@pytest.mark.parametrize("mode", convert.FLOAT_HEAD_MODES)
def test_float_head_tile_matches_the_keras_model(trained, uncompacted, data_dir, tmp_path,
                                                 mode):
    path = tmp_path / "tile_int8.tflite"
    path.write_bytes(compact.compact_flatbuffer(uncompacted[mode]))
    runner = Runner(path, threads=1)
    assert runner.packed_io and runner.io_dtypes["bayer"] == np.int8
    tiles = calibration.validation_tiles(data_dir, tiny.TINY, 4, SIDE)
    for bayer, _, _ in tiles:
        want = trained(bayer[None, ..., None], training=False).numpy()[0]
        assert psnr(runner.run(bayer), want) >= FLOAT_HEAD_MIN_PSNR_DB


def test_float_head_mode_refuses_a_model_without_packed_io(trained, representative):
    unpacked = convert.fixed_shape_model(trained, SIDE, SIDE)
    with pytest.raises(ValueError, match="packed-IO model"):
        convert.convert_model(unpacked, "int8_per_tensor_float_head", representative, "int8")


def test_head_search_names_the_missing_residual_add():
    inputs = keras.Input((8, 8, 4), batch_size=1, name="bayer")
    model = keras.Model(inputs, keras.layers.Conv2D(12, 1, name="rgb")(inputs))
    content = convert.convert_model(model, "float32", compact=False)
    with pytest.raises(ValueError, match="no residual ADD"):
        float_head.head_tensors(flatbuffer_utils.read_model_from_bytearray(bytearray(content)))
