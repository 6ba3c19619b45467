#!/usr/bin/python3
"""Writes small synthetic ONNX models that exercise QuantLens's reader and layer
discovery edge cases.

Usage: /usr/bin/python3 tools/make_test_models.py OUTDIR

Deterministic: every case seeds its own random generator, so the same onnx/numpy
versions write the same bytes. Needs the `onnx` and `numpy` Python packages
(Debian: python3-onnx, python3-numpy). Each model passes
onnx.checker.check_model(full_check=True) unless its comment says otherwise.

Weights are random with deliberately uneven channel ranges (a few output channels
scaled x50) so that the outlier rule has something to find; the scaled channels
always lie on the op's output-channel axis, so a wrong axis shows up as wrong
outliers.

Where onnx's Python API always writes the canonical encoding (packed repeated
fields), the script hand-encodes the bytes with the small protobuf wire encoder
below.
"""

import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_model

PRODUCER = "quantlens-make_test_models"
F = TensorProto.FLOAT


# ----------------------------------------------------------------------------
# Helpers

def uneven(rng, shape, axis=0, big=(1,), sigma=0.1, dtype=np.float32):
    """Normal(0, sigma) values with the channels `big` along `axis` scaled x50."""
    w = rng.normal(0.0, sigma, size=shape)
    for c in big:
        index = [slice(None)] * len(shape)
        index[axis] = c
        w[tuple(index)] *= 50.0
    return w.astype(dtype)


def init(name, array):
    """An initializer in raw_data (onnx's default encoding)."""
    return numpy_helper.from_array(np.asarray(array), name)


def vi(name, elem_type, shape=None):
    return helper.make_tensor_value_info(name, elem_type, shape)


def make_model(graph, opset, ir_version=None, extra_opsets=(), **fields):
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                              producer_version="1", **fields)
    model.ir_version = ir_version or helper.find_min_ir_version_for(opsets[:1])
    fill_output_shapes(model)
    return model


def fill_output_shapes(model):
    """Graph outputs declared with vi(name, type) (no shape) get the shape that
    onnx's shape inference finds, in the main graph and in every sub-graph
    (the checker wants a shape on each output)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)

    def fill(graph, done):
        for out, inf in zip(graph.output, done.output):
            if not out.type.tensor_type.HasField("shape") and inf.type.tensor_type.HasField("shape"):
                out.type.CopyFrom(inf.type)
        for node, inf_node in zip(graph.node, done.node):
            for a, inf_a in zip(node.attribute, inf_node.attribute):
                if a.type == onnx.AttributeProto.GRAPH:
                    fill(a.g, inf_a.g)
                for g, inf_g in zip(a.graphs, inf_a.graphs):
                    fill(g, inf_g)

    fill(model.graph, inferred.graph)


# ----------------------------------------------------------------------------
# A tiny protobuf wire encoder, for encodings onnx's Python API never writes.

def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64 are sign-extended to 10 bytes
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field, wire_type):
    return varint(field << 3 | wire_type)


def f_varint(field, value):
    return tag(field, 0) + varint(value)


def f_fixed32_float(field, value):
    return tag(field, 5) + struct.pack("<f", value)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return tag(field, 2) + varint(len(data)) + data


def f_packed_floats(field, values):
    return f_bytes(field, struct.pack(f"<{len(values)}f", *values))


# TensorProto field numbers (onnx.proto).
T_DIMS, T_DATA_TYPE, T_FLOAT_DATA, T_INT32_DATA, T_NAME = 1, 2, 4, 5, 8
# GraphProto.initializer, ModelProto.graph
G_INITIALIZER, M_GRAPH = 5, 7


def with_hand_initializers(model, encoded):
    """Serialized `model` whose initializers named in `encoded` ({name: bytes of a
    TensorProto}) are replaced by those hand-encoded bytes, appended after the
    graph's other fields (an ordinary, if non-canonical, field order)."""
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    keep = [t for t in graph.initializer if t.name not in encoded]
    graph.ClearField("initializer")
    graph.initializer.extend(keep)
    graph_bytes = graph.SerializeToString()
    graph_bytes += b"".join(f_bytes(G_INITIALIZER, t) for t in encoded.values())
    head = onnx.ModelProto()
    head.CopyFrom(model)
    head.ClearField("graph")
    return head.SerializeToString() + f_bytes(M_GRAPH, graph_bytes)


# ----------------------------------------------------------------------------
# Cases. Each returns (ModelProto or bytes, {extra file name: bytes}).

def typed_float_data():
    """Conv weight in float_data (not raw_data); Gemm weight float64 in double_data."""
    rng = np.random.default_rng(101)
    w = uneven(rng, (8, 3, 3, 3), big=(2,))
    b = rng.normal(0, 0.1, 8).astype(np.float32)
    wd = uneven(rng, (16, 6), axis=1, big=(4,), dtype=np.float64)  # Gemm transB=0: [K, N]
    cd = np.zeros(6, np.float64)
    inits = [
        helper.make_tensor("conv_w", F, w.shape, w.ravel().tolist()),        # float_data
        helper.make_tensor("conv_b", F, b.shape, b.ravel().tolist()),
        helper.make_tensor("gemm_w", TensorProto.DOUBLE, wd.shape, wd.ravel().tolist()),  # double_data
        helper.make_tensor("gemm_c", TensorProto.DOUBLE, cd.shape, cd.tolist()),
    ]
    for t in inits:
        assert not t.HasField("raw_data")
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["y"], name="conv_float_data"),
        helper.make_node("Gemm", ["v", "gemm_w", "gemm_c"], ["z"], name="gemm_double_data"),
    ]
    graph = helper.make_graph(nodes, "typed_float_data",
                              [vi("x", F, [1, 3, 8, 8]), vi("v", TensorProto.DOUBLE, [2, 16])],
                              [vi("y", F), vi("z", TensorProto.DOUBLE)], inits)
    return make_model(graph, 13), {}


def unpacked_fields():
    """Hand-encoded tensors:
    - unpacked_w: float Conv weight, dims and float_data UNPACKED (one fixed32
      field 4 per value);
    - unpacked_q: int8 weight in UNPACKED int32_data (one varint per value,
      negatives as 10-byte sign-extended varints) behind DequantizeLinear(axis=1)
      into a MatMul;
    - mixed_w: float_data split into a packed run, single unpacked values and
      another packed run (legal protobuf: parsers must concatenate them all)."""
    rng = np.random.default_rng(102)
    w = uneven(rng, (4, 3, 3, 3), big=(3,))
    q = rng.integers(-127, 128, size=(6, 4)).astype(np.int8)  # MatMul [K, N]
    q_scale = np.array([0.01, 0.02, 0.5, 0.015], np.float32)  # column 2 is the wide one
    mixed = uneven(rng, (5, 4, 1, 1), big=(0,))

    def dims(shape):
        return b"".join(f_varint(T_DIMS, d) for d in shape)  # unpacked (proto2 default)

    enc_w = (dims(w.shape) + f_varint(T_DATA_TYPE, TensorProto.FLOAT)
             + b"".join(f_fixed32_float(T_FLOAT_DATA, v) for v in w.ravel().tolist())
             + f_bytes(T_NAME, "unpacked_w"))
    enc_q = (dims(q.shape) + f_varint(T_DATA_TYPE, TensorProto.INT8)
             + b"".join(f_varint(T_INT32_DATA, int(v)) for v in q.ravel())
             + f_bytes(T_NAME, "unpacked_q"))
    m = mixed.ravel().tolist()
    enc_mixed = (f_bytes(T_NAME, "mixed_w") + f_varint(T_DATA_TYPE, TensorProto.FLOAT) + dims(mixed.shape)
                 + f_packed_floats(T_FLOAT_DATA, m[:7])
                 + b"".join(f_fixed32_float(T_FLOAT_DATA, v) for v in m[7:10])
                 + f_packed_floats(T_FLOAT_DATA, m[10:]))

    # Ordinary copies of the three tensors stand in while the model is built (shape
    # inference needs them); with_hand_initializers swaps in the hand encodings.
    inits = [init("q_scale", q_scale), init("q_zp", np.zeros(4, np.int8)),
             init("unpacked_w", w), init("unpacked_q", q), init("mixed_w", mixed)]
    nodes = [
        helper.make_node("Conv", ["x", "unpacked_w"], ["c1"], name="conv_unpacked"),
        helper.make_node("Conv", ["c1", "mixed_w"], ["y"], name="conv_mixed_packing"),
        helper.make_node("DequantizeLinear", ["unpacked_q", "q_scale", "q_zp"], ["q_deq"], axis=1),
        helper.make_node("MatMul", ["m", "q_deq"], ["z"], name="matmul_unpacked_int8"),
    ]
    graph = helper.make_graph(nodes, "unpacked_fields", [vi("x", F, [1, 3, 8, 8]), vi("m", F, [2, 6])],
                              [vi("y", F), vi("z", F)], inits)
    data = with_hand_initializers(make_model(graph, 13),
                                  {"unpacked_w": enc_w, "unpacked_q": enc_q, "mixed_w": enc_mixed})

    # Self-check: the hand encoding decodes to the intended values, and is unpacked.
    back = {t.name: t for t in onnx.load_from_string(data).graph.initializer}
    assert np.array_equal(numpy_helper.to_array(back["unpacked_w"]), w)
    assert np.array_equal(numpy_helper.to_array(back["unpacked_q"]), q)
    assert np.array_equal(numpy_helper.to_array(back["mixed_w"]), mixed)
    assert tag(T_FLOAT_DATA, 5) in enc_w and tag(T_INT32_DATA, 0) in enc_q
    return data, {}


def fp16_bf16():
    """Conv weights float16 in raw_data and float16 in int32_data, a MatMul weight
    bfloat16 in raw_data; each reaches its op through Cast(to=FLOAT)."""
    rng = np.random.default_rng(103)
    w_raw = uneven(rng, (8, 3, 3, 3), big=(5,), dtype=np.float16)
    w_i32 = uneven(rng, (8, 8, 1, 1), big=(0, 6), dtype=np.float16)
    # bfloat16: the top 16 bits of float32 (values chosen as float32, then truncated).
    w_bf = uneven(rng, (16, 8), axis=1, big=(3,))
    bf_bits = (w_bf.view(np.uint32) >> 16).astype(np.uint16)

    t_raw = numpy_helper.from_array(w_raw, "w_fp16_raw")
    t_i32 = TensorProto(name="w_fp16_int32", data_type=TensorProto.FLOAT16, dims=w_i32.shape)
    t_i32.int32_data.extend(w_i32.view(np.uint16).ravel().astype(np.int32).tolist())
    t_bf = TensorProto(name="w_bf16_raw", data_type=TensorProto.BFLOAT16, dims=w_bf.shape,
                       raw_data=bf_bits.astype("<u2").tobytes())
    nodes = [
        helper.make_node("Cast", ["w_fp16_raw"], ["w1"], to=F),
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv_fp16_raw"),
        helper.make_node("Cast", ["w_fp16_int32"], ["w2"], to=F),
        helper.make_node("Conv", ["c1", "w2"], ["y"], name="conv_fp16_int32_data"),
        helper.make_node("Cast", ["w_bf16_raw"], ["w3"], to=F),
        helper.make_node("MatMul", ["m", "w3"], ["z"], name="matmul_bf16_raw"),
    ]
    graph = helper.make_graph(nodes, "fp16_bf16", [vi("x", F, [1, 3, 8, 8]), vi("m", F, [2, 16])],
                              [vi("y", F), vi("z", F)], [t_raw, t_i32, t_bf])
    return make_model(graph, 13), {}


def external_data():
    """Two Conv weights in external_data.bin (location/offset/length, the second at
    a padded offset), one inline."""
    rng = np.random.default_rng(104)
    wa = uneven(rng, (8, 3, 3, 3), big=(1,))
    wb = uneven(rng, (8, 8, 3, 3), big=(4, 7))
    wc = uneven(rng, (4, 8, 1, 1), big=(2,))
    blob_a = wa.astype("<f4").tobytes()
    offset_b = 1024  # not right after blob_a: readers must honour the offset
    blob_b = wb.astype("<f4").tobytes()
    assert len(blob_a) <= offset_b
    bin_bytes = blob_a + b"\0" * (offset_b - len(blob_a)) + blob_b

    def external(name, shape, offset, length):
        t = TensorProto(name=name, data_type=F, dims=shape, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", "external_data.bin"), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return t

    inits = [external("w_ext_a", wa.shape, 0, len(blob_a)),
             external("w_ext_b", wb.shape, offset_b, len(blob_b)),
             init("w_inline", wc)]
    nodes = [
        helper.make_node("Conv", ["x", "w_ext_a"], ["c1"], name="conv_external_a"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w_ext_b"], ["c2"], name="conv_external_b"),
        helper.make_node("Conv", ["c2", "w_inline"], ["y"], name="conv_inline"),
    ]
    graph = helper.make_graph(nodes, "external_data", [vi("x", F, [1, 3, 8, 8])], [vi("y", F)], inits)
    return make_model(graph, 13), {"external_data.bin": bin_bytes}


def subgraphs():
    """If whose two branches each hold a Conv reading an outer-scope initializer;
    an unnamed Loop (display name "Loop#1") whose body has a MatMul on a body-local
    initializer, and inside the body an If whose then-branch MatMul reads another
    body-local initializer (two scope levels up); a custom-domain node with a
    GRAPHS attribute. helper.make_node sorts attributes, so else_branch precedes
    then_branch in the file (layers are listed in attribute order)."""
    rng = np.random.default_rng(105)
    inits = [init("w_then", uneven(rng, (4, 3, 3, 3), big=(0,))),
             init("w_else", uneven(rng, (4, 3, 3, 3), big=(3,))),
             init("b_else", np.zeros(4, np.float32))]
    then_g = helper.make_graph([helper.make_node("Conv", ["x", "w_then"], ["t_out"], name="then_conv")],
                               "then_branch", [], [vi("t_out", F)])
    else_g = helper.make_graph([helper.make_node("Conv", ["x", "w_else", "b_else"], ["e_c"], name="else_conv"),
                                helper.make_node("Relu", ["e_c"], ["e_out"])],
                               "else_branch", [], [vi("e_out", F)])

    inner_then = helper.make_graph([helper.make_node("MatMul", ["r", "w_body2"], ["it_out"])],
                                   "inner_then", [], [vi("it_out", F)])
    inner_else = helper.make_graph([helper.make_node("Identity", ["r"], ["ie_out"])],
                                   "inner_else", [], [vi("ie_out", F)])
    body = helper.make_graph(
        [helper.make_node("MatMul", ["v_in", "w_body"], ["mm"], name="body_matmul"),
         helper.make_node("Relu", ["mm"], ["r"]),
         helper.make_node("If", ["c_in"], ["v_out"], name="inner_if",
                          then_branch=inner_then, else_branch=inner_else),
         helper.make_node("Identity", ["c_in"], ["c_out"])],
        "loop_body",
        [vi("i", TensorProto.INT64, []), vi("c_in", TensorProto.BOOL, []), vi("v_in", F, [1, 4])],
        [vi("c_out", TensorProto.BOOL, []), vi("v_out", F)],
        [init("w_body", uneven(rng, (4, 4), axis=1, big=(1,))),
         init("w_body2", uneven(rng, (4, 4), axis=1, big=(2,)))])

    # A node of a custom domain holding a list of graphs (attribute type GRAPHS):
    # its layers' paths are "multi/branches[0]" and "multi/branches[1]".
    inits.append(init("w_multi", uneven(rng, (4, 6), axis=1, big=(5,))))
    branches = [helper.make_graph([helper.make_node("MatMul", ["v0", "w_multi"], [f"b{k}_out"],
                                                    name=f"branch{k}_matmul")],
                                  f"branch{k}", [], [vi(f"b{k}_out", F)]) for k in range(2)]

    nodes = [
        helper.make_node("If", ["cond"], ["y"], name="if_select", then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "cond", "v0"], ["v_final"], body=body),  # unnamed
        helper.make_node("Multi", ["v0"], ["multi_out"], name="multi", domain="com.quantlens.test",
                         branches=branches),
    ]
    graph = helper.make_graph(
        nodes, "subgraphs",
        [vi("x", F, [1, 3, 8, 8]), vi("cond", TensorProto.BOOL, []), vi("trip", TensorProto.INT64, []),
         vi("v0", F, [1, 4])],
        [vi("y", F), vi("v_final", F, [1, 4]), vi("multi_out", F, [1, 6])], inits)
    return make_model(graph, 13, extra_opsets=[("com.quantlens.test", 1)]), {}


def subgraph_shadowing():
    """DELIBERATELY ODD (fails the checker's SSA rule, so it is not checked): the
    then-branch's Transpose produces a value named "w", like the outer initializer
    "w"; the branch's MatMul must read the inner value (stored "w0", output
    channels on stored axis 0), while the else-branch MatMul reads the outer "w"
    (output channels on axis 1)."""
    rng = np.random.default_rng(114)
    inits = [init("w", uneven(rng, (4, 6), axis=1, big=(2,))),
             init("w0", uneven(rng, (6, 4), axis=0, big=(4,)))]
    then_g = helper.make_graph([helper.make_node("Transpose", ["w0"], ["w"], perm=[1, 0]),
                                helper.make_node("MatMul", ["v", "w"], ["t"], name="then_matmul_inner_w")],
                               "then_branch", [], [vi("t", F, [1, 6])])
    else_g = helper.make_graph([helper.make_node("MatMul", ["v", "w"], ["e"], name="else_matmul_outer_w")],
                               "else_branch", [], [vi("e", F, [1, 6])])
    nodes = [helper.make_node("If", ["cond"], ["y"], name="if_shadow", then_branch=then_g, else_branch=else_g)]
    graph = helper.make_graph(nodes, "subgraph_shadowing", [vi("v", F, [1, 4]), vi("cond", TensorProto.BOOL, [])],
                              [vi("y", F, [1, 6])], inits)
    opsets = [helper.make_opsetid("", 13)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER, producer_version="1")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model, {}


def constant_nodes():
    """Conv weights from Constant nodes (value tensor; the second through Identity,
    its tensor named differently from the node output), Clip bounds from Constant
    nodes' value_float."""
    rng = np.random.default_rng(106)
    w1 = uneven(rng, (8, 3, 3, 3), big=(6,))
    w2 = uneven(rng, (4, 8, 3, 3), big=(0,))
    nodes = [
        helper.make_node("Constant", [], ["w1"], value=numpy_helper.from_array(w1, "w1")),
        helper.make_node("Constant", [], ["lo"], value_float=0.0),
        helper.make_node("Constant", [], ["hi"], value_float=6.0),
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv_constant_weight"),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"]),  # relu6
        helper.make_node("Constant", [], ["w2_const"], value=numpy_helper.from_array(w2, "w2_tensor_name")),
        helper.make_node("Identity", ["w2_const"], ["w2"]),
        helper.make_node("Constant", [], ["b2"], value=numpy_helper.from_array(np.full(4, 0.5, np.float32))),
        helper.make_node("Constant", [], ["lo2"], value_float=-1.0),
        helper.make_node("Constant", [], ["hi2"], value_float=1.0),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv_constant_via_identity"),
        helper.make_node("Clip", ["c2", "lo2", "hi2"], ["y"]),  # clip
    ]
    graph = helper.make_graph(nodes, "constant_nodes", [vi("x", F, [1, 3, 8, 8])], [vi("y", F)])
    return make_model(graph, 13), {}


def graph_inputs():
    """IR version 3 / opset 8, as old exporters wrote: every initializer is also
    listed as a graph input."""
    rng = np.random.default_rng(107)
    arrays = {
        "w1": uneven(rng, (8, 3, 3, 3), big=(2,)),
        "b1": rng.normal(0, 0.1, 8).astype(np.float32),
        "w2": uneven(rng, (4, 8, 3, 3), big=(1,)),
        "w3": uneven(rng, (5, 64), axis=0, big=(4,)),  # Gemm transB=1: [N, K]
        "c3": np.zeros(5, np.float32),
    }
    inits = [init(k, v) for k, v in arrays.items()]
    inputs = [vi("x", F, [1, 3, 8, 8])] + [vi(k, F, list(v.shape)) for k, v in arrays.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Flatten", ["c2"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "c3"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "graph_inputs", inputs, [vi("y", F)], inits)
    return make_model(graph, 8, ir_version=3), {}


def qdq():
    """Quantized weights: DequantizeLinear int8 per-axis (axis 0) -> Conv;
    uint8 per-tensor DQ -> MatMul; int8 per-axis DQ with axis=-1 -> MatMul;
    QLinearConv with per-channel w_scale; ConvInteger with per-channel w_zero_point;
    MatMulInteger with per-column b_zero_point; QLinearMatMul with per-column b_scale."""
    rng = np.random.default_rng(108)
    U8 = TensorProto.UINT8

    def q_int8(shape, axis, wide):
        """int8 values: narrow everywhere, full range on channel `wide` of `axis`."""
        q = rng.integers(-20, 21, size=shape)
        index = [slice(None)] * len(shape)
        index[axis] = wide
        q[tuple(index)] = rng.integers(-127, 128, size=q[tuple(index)].shape)
        return q.astype(np.int8)

    # 1. DQ per-axis int8 -> Conv
    q1 = q_int8((8, 3, 3, 3), 0, 5)
    s1 = rng.uniform(0.001, 0.01, 8).astype(np.float32)
    # 2. DQ per-tensor uint8 (zero point 128) -> MatMul [16, 6]
    q2 = (128 + rng.integers(-10, 11, size=(16, 6))).astype(np.int64)
    q2[:, 2] = rng.integers(0, 256, size=16)
    q2 = q2.astype(np.uint8)
    # 3. DQ per-axis along axis=-1 (the output columns) -> MatMul [16, 6]
    q3 = q_int8((16, 6), 1, 0)
    s3 = rng.uniform(0.001, 0.01, 6).astype(np.float32)
    # 4. QLinearConv, per-channel w_scale (one channel 50x)
    q4 = rng.integers(-127, 128, size=(6, 3, 3, 3)).astype(np.int8)
    s4 = np.full(6, 0.002, np.float32)
    s4[1] *= 50
    # 5. ConvInteger, uint8 weight, per-channel zero point
    q5 = q_int8((4, 3, 3, 3), 0, 2).astype(np.int16) + 128
    q5 = q5.astype(np.uint8)
    zp5 = np.array([128, 120, 128, 136], np.uint8)
    # 6. MatMulInteger, int8 weight [8, 5], per-column zero point
    q6 = q_int8((8, 5), 1, 3)
    zp6 = np.array([0, 3, -2, 0, 5], np.int8)
    # 7. QLinearMatMul, uint8 weight [8, 5], per-column scale and zero point
    q7 = rng.integers(100, 156, size=(8, 5)).astype(np.uint8)
    s7 = np.array([0.01, 0.01, 0.01, 0.5, 0.01], np.float32)
    zp7 = np.full(5, 128, np.uint8)

    inits = [
        init("q1", q1), init("s1", s1), init("zp1", np.zeros(8, np.int8)),
        init("q2", q2), init("s2", np.float32(0.02)), init("zp2", np.uint8(128)),
        init("q3", q3), init("s3", s3),
        init("q4", q4), init("s4", s4), init("zp4", np.zeros(6, np.int8)),
        init("xs4", np.float32(0.05)), init("xzp4", np.uint8(128)),
        init("ys4", np.float32(0.1)), init("yzp4", np.uint8(128)), init("b4", np.zeros(6, np.int32)),
        init("q5", q5), init("zp5", zp5), init("xzp5", np.uint8(128)),
        init("q6", q6), init("zp6", zp6), init("azp6", np.uint8(128)),
        init("q7", q7), init("s7", s7), init("zp7", zp7),
        init("as7", np.float32(0.05)), init("azp7", np.uint8(128)),
        init("ys7", np.float32(0.1)), init("yzp7", np.uint8(128)),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["q1", "s1", "zp1"], ["w1"], axis=0),
        helper.make_node("Conv", ["x", "w1"], ["y1"], name="conv_dq_per_axis"),
        helper.make_node("DequantizeLinear", ["q2", "s2", "zp2"], ["w2"]),
        helper.make_node("MatMul", ["m", "w2"], ["y2"], name="matmul_dq_uint8_per_tensor"),
        helper.make_node("DequantizeLinear", ["q3", "s3"], ["w3"], axis=-1),  # no zero point
        helper.make_node("MatMul", ["m", "w3"], ["y3"], name="matmul_dq_axis_minus1"),
        helper.make_node("QLinearConv", ["xq", "xs4", "xzp4", "q4", "s4", "zp4", "ys4", "yzp4", "b4"], ["y4"],
                         name="qlinearconv_per_channel"),
        helper.make_node("ConvInteger", ["xq", "q5", "xzp5", "zp5"], ["y5"], name="convinteger_per_channel_zp"),
        helper.make_node("MatMulInteger", ["aq", "q6", "azp6", "zp6"], ["y6"], name="matmulinteger_per_column_zp"),
        helper.make_node("QLinearMatMul", ["aq", "as7", "azp7", "q7", "s7", "zp7", "ys7", "yzp7"], ["y7"],
                         name="qlinearmatmul_per_column"),
    ]
    graph = helper.make_graph(
        nodes, "qdq",
        [vi("x", F, [1, 3, 8, 8]), vi("m", F, [2, 16]), vi("xq", U8, [1, 3, 8, 8]), vi("aq", U8, [2, 8])],
        [vi("y1", F), vi("y2", F), vi("y3", F), vi("y4", U8), vi("y5", TensorProto.INT32),
         vi("y6", TensorProto.INT32), vi("y7", U8)], inits)
    return make_model(graph, 13), {}


def layouts():
    """Where the output channels are: grouped and depthwise ConvTranspose, Gemm
    transB 0/1, MatMul [K, N], weights reached through Transpose (with and without
    perm), HWIO storage, a constant on the left of MatMul, a batched MatMul weight,
    depthwise Conv with channel multiplier 2."""
    rng = np.random.default_rng(109)
    # ConvTranspose [I, O/g, kh, kw]; output channel o = gi*(O/g)+j.
    wt_grouped = uneven(rng, (4, 3, 3, 3), axis=1, big=())   # group 2: O = 6
    wt_grouped[2:4, 1] *= 50  # output channel 1*3+1 = 4
    wt_dw = uneven(rng, (4, 2, 3, 3), axis=1, big=())        # group 4: O = 8, depthwise
    wt_dw[3, 0] *= 50          # output channel 3*2+0 = 6
    hwio = uneven(rng, (3, 3, 3, 8), axis=3, big=(5,))      # Transposed to OIHW
    arrays = {
        "wt_grouped": wt_grouped,
        "wt_dw": wt_dw,
        "gemm_kn": uneven(rng, (16, 6), axis=1, big=(1,)),    # Gemm transB=0
        "gemm_nk": uneven(rng, (6, 16), axis=0, big=(2,)),    # Gemm transB=1
        "mm_kn": uneven(rng, (16, 6), axis=1, big=(3,)),      # MatMul [K, N]
        "mm_nk": uneven(rng, (6, 16), axis=0, big=(4,)),      # Transpose(perm=[1,0]) -> [K, N]
        "hwio": hwio,
        "left_mk": uneven(rng, (6, 16), axis=0, big=(0,)),    # W @ x: rows are outputs
        "dw_mult2": uneven(rng, (6, 1, 3, 3), axis=0, big=(3,)),  # group 3, multiplier 2
        "gemm_kn_t": uneven(rng, (16, 6), axis=1, big=(5,)),  # Transpose (no perm) -> [N, K], transB=1
        "mm_batched": uneven(rng, (2, 16, 6), axis=2, big=(2,)),
    }
    nodes = [
        helper.make_node("ConvTranspose", ["x4", "wt_grouped"], ["o1"], name="convtranspose_group2", group=2),
        helper.make_node("ConvTranspose", ["x4", "wt_dw"], ["o2"], name="convtranspose_depthwise", group=4),
        helper.make_node("Gemm", ["g", "gemm_kn"], ["o3"], name="gemm_transB0", transB=0),
        helper.make_node("Gemm", ["g", "gemm_nk"], ["o4"], name="gemm_transB1", transB=1),
        helper.make_node("MatMul", ["g", "mm_kn"], ["o5"], name="matmul_kn"),
        helper.make_node("Transpose", ["mm_nk"], ["mm_nk_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["g", "mm_nk_t"], ["o6"], name="matmul_via_transpose"),
        helper.make_node("Transpose", ["hwio"], ["oihw"], perm=[3, 2, 0, 1]),
        helper.make_node("Conv", ["x3", "oihw"], ["o7"], name="conv_hwio_transposed"),
        helper.make_node("MatMul", ["left_mk", "k"], ["o8"], name="matmul_weight_left"),
        helper.make_node("Conv", ["x3", "dw_mult2"], ["o9"], name="conv_depthwise_mult2", group=3),
        helper.make_node("Transpose", ["gemm_kn_t"], ["gemm_nk_t"]),  # default perm: reverse
        helper.make_node("Gemm", ["g", "gemm_nk_t"], ["o10"], name="gemm_transB1_via_transpose", transB=1),
        helper.make_node("MatMul", ["gb", "mm_batched"], ["o11"], name="matmul_batched"),
    ]
    graph = helper.make_graph(
        nodes, "layouts",
        [vi("x4", F, [1, 4, 5, 5]), vi("x3", F, [1, 3, 8, 8]), vi("g", F, [2, 16]), vi("k", F, [16, 5]),
         vi("gb", F, [2, 1, 16])],
        [vi(f"o{i}", F) for i in range(1, 12)], [init(k, v) for k, v in arrays.items()])
    return make_model(graph, 13), {}


def followers():
    """What follows each layer (opset 13: Clip bounds are inputs)."""
    rng = np.random.default_rng(110)
    inits, nodes, outputs = [], [], []

    def conv(name, bias=False):
        inits.append(init(f"{name}_w", uneven(rng, (8, 3, 3, 3), big=(int(rng.integers(8)),))))
        ins = ["x", f"{name}_w"]
        if bias:
            inits.append(init(f"{name}_b", rng.normal(0, 0.1, 8).astype(np.float32)))
            ins.append(f"{name}_b")
        nodes.append(helper.make_node("Conv", ins, [f"{name}_out"], name=name))
        return f"{name}_out"

    def then(op, inputs, name, **kw):
        nodes.append(helper.make_node(op, inputs, [name], **kw))
        return name

    inits += [init("zero", np.float32(0)), init("six", np.float32(6)),
              init("minus_one", np.float32(-1)), init("one", np.float32(1)),
              init("prelu_slope", np.full((8, 1, 1), 0.25, np.float32)),
              init("bn_scale", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
              init("bn_bias", rng.normal(0, 0.1, 8).astype(np.float32)),
              init("bn_mean", rng.normal(0, 0.1, 8).astype(np.float32)),
              init("bn_var", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
              init("add_bias_c11", rng.normal(0, 0.1, (8, 1, 1)).astype(np.float32)),
              init("add_scalar", np.array([0.5], np.float32)),
              init("mm_w", uneven(rng, (16, 8), axis=1, big=(2,))),
              init("mm_bias", rng.normal(0, 0.1, 8).astype(np.float32)),
              init("gemm_w", uneven(rng, (8, 16), axis=0, big=(7,))),
              init("gemm_bias", rng.normal(0, 0.1, 8).astype(np.float32))]
    bn = ["bn_scale", "bn_bias", "bn_mean", "bn_var"]

    outputs.append(then("Relu", [conv("conv_relu", bias=True)], "o_relu"))
    outputs.append(then("Clip", [conv("conv_relu6_inputs", bias=True), "zero", "six"], "o_relu6"))
    outputs.append(then("Clip", [conv("conv_clip_minus1_1"), "minus_one", "one"], "o_clip"))
    outputs.append(then("Clip", [conv("conv_clip_min_only"), "zero"], "o_clip_min"))  # [0, +inf): clip
    outputs.append(then("Relu", [then("BatchNormalization", [conv("conv_bn_relu")] + bn, "bn1")], "o_bn_relu"))
    outputs.append(then("Clip", [then("BatchNormalization", [conv("conv_bn_relu6")] + bn, "bn2"), "zero", "six"],
                        "o_bn_relu6"))
    outputs.append(then("BatchNormalization", [conv("conv_bn_output")] + bn, "o_bn"))  # activation: none
    outputs.append(then("PRelu", [conv("conv_prelu"), "prelu_slope"], "o_prelu"))
    outputs.append(then("LeakyRelu", [conv("conv_leakyrelu")], "o_leaky", alpha=0.1))
    c = conv("conv_silu", bias=True)
    outputs.append(then("Mul", [c, then("Sigmoid", [c], "silu_sig")], "o_silu"))
    c = conv("conv_two_consumers")
    outputs += [then("Relu", [c], "o_two_a"), then("Sigmoid", [c], "o_two_b")]
    outputs.append(conv("conv_graph_output"))                                         # none
    outputs.append(then("Relu", [then("Add", [conv("conv_add_bias"), "add_bias_c11"], "ab")], "o_add_bias"))
    outputs.append(then("Add", [conv("conv_add_scalar"), "add_scalar"], "o_add_scalar"))  # not a bias: other
    nodes.append(helper.make_node("MatMul", ["m", "mm_w"], ["mm_out"], name="matmul_add_bias"))
    outputs.append(then("Relu", [then("Add", ["mm_out", "mm_bias"], "mm_biased")], "o_mm"))
    nodes.append(helper.make_node("Gemm", ["m", "gemm_w"], ["gemm_out"], name="gemm_no_c_add_bias", transB=1))
    outputs.append(then("Add", ["gemm_bias", "gemm_out"], "o_gemm"))  # bias first; then graph output: none

    graph = helper.make_graph(nodes, "followers", [vi("x", F, [1, 3, 8, 8]), vi("m", F, [2, 16])],
                              [vi(o, F) for o in outputs], inits)
    return make_model(graph, 13), {}


def followers_opset10():
    """Clip bounds as attributes (opset < 11)."""
    rng = np.random.default_rng(111)
    inits = [init(f"w{i}", uneven(rng, (8, 3, 3, 3), big=(i,))) for i in range(4)]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv_clip_attr_relu6"),
        helper.make_node("Clip", ["c0"], ["o0"], min=0.0, max=6.0),
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv_clip_attr_minus1_1"),
        helper.make_node("Clip", ["c1"], ["o1"], min=-1.0, max=1.0),
        helper.make_node("Conv", ["x", "w2"], ["c2"], name="conv_clip_attr_max_only"),
        helper.make_node("Clip", ["c2"], ["o2"], max=6.0),  # (-inf, 6]: clip
        helper.make_node("Conv", ["x", "w3"], ["c3"], name="conv_relu"),
        helper.make_node("Relu", ["c3"], ["o3"]),
    ]
    graph = helper.make_graph(nodes, "followers_opset10", [vi("x", F, [1, 3, 8, 8])],
                              [vi(f"o{i}", F) for i in range(4)], inits)
    return make_model(graph, 10), {}


HOSTILE_1 = "<script>alert(1)</script>"
HOSTILE_2 = "\"><img src=x onerror=alert(1)>"
HOSTILE_3 = "q\"uote' back\\slash\nnew line\u2028sep &amp; </textarea>{{x}}"


def hostile_names():
    """Node, tensor, graph and metadata strings with HTML/JS injection attempts
    (for a browser test that they are shown as text), including a sub-graph
    path made of them."""
    rng = np.random.default_rng(112)
    w1, w2, w3 = HOSTILE_2, HOSTILE_1 + "_w", HOSTILE_3 + "_w"
    inits = [init(w1, uneven(rng, (8, 3, 3, 3), big=(3,))),
             init(HOSTILE_1 + "_bias", np.zeros(8, np.float32)),
             init(w2, uneven(rng, (16, 4), axis=1, big=(0,))),
             init(w3, uneven(rng, (4, 3, 3, 3), big=(1,)))]
    then_g = helper.make_graph([helper.make_node("Conv", ["x", w3], [HOSTILE_3 + "_then"], name=HOSTILE_3)],
                               HOSTILE_1, [], [vi(HOSTILE_3 + "_then", F)])
    else_g = helper.make_graph([helper.make_node("Identity", [HOSTILE_2 + "_y"], [HOSTILE_2 + "_else"])],
                               HOSTILE_2, [], [vi(HOSTILE_2 + "_else", F)])
    nodes = [
        helper.make_node("Conv", ["x", w1, HOSTILE_1 + "_bias"], [HOSTILE_2 + "_y"], name=HOSTILE_1,
                         doc_string=HOSTILE_2),
        helper.make_node("Relu", [HOSTILE_2 + "_y"], [HOSTILE_1 + "_relu"], name=HOSTILE_2),
        helper.make_node("MatMul", ["m", w2], [HOSTILE_1 + "_mm"]),  # unnamed
        helper.make_node("If", ["cond"], [HOSTILE_1 + "_if"], name=HOSTILE_2, then_branch=then_g, else_branch=else_g),
    ]
    graph = helper.make_graph(
        nodes, HOSTILE_1, [vi("x", F, [1, 3, 8, 8]), vi("m", F, [2, 16]), vi("cond", TensorProto.BOOL, [])],
        [vi(HOSTILE_1 + "_relu", F), vi(HOSTILE_1 + "_mm", F), vi(HOSTILE_1 + "_if", F)], inits,
        doc_string=HOSTILE_3)
    model = make_model(graph, 13, doc_string=HOSTILE_2)
    model.producer_name = HOSTILE_1
    model.producer_version = HOSTILE_2
    model.domain = HOSTILE_3
    helper.set_model_props(model, {HOSTILE_1: HOSTILE_2, "description": HOSTILE_2 + HOSTILE_1, HOSTILE_3: HOSTILE_3})
    return model, {}


def zero_and_constant():
    """Degenerate weights: an all-zero channel; all weights equal (histogram width
    0, every channel range 0); all zero (scale 0, SQNR +inf); subnormal weights
    (1/scale overflows to inf, so quantization gives 0 and SQNR 0 dB; histogram
    bin scale overflows too)."""
    rng = np.random.default_rng(113)
    w_zero_channel = uneven(rng, (8, 3, 3, 3), big=(5,))
    w_zero_channel[2] = 0
    tiny = np.float32(1e-40)  # subnormal float32
    w_subnormal = (rng.integers(-3, 4, size=(4, 3, 3, 3)) * tiny).astype(np.float32)
    w_subnormal[0, 0, 0, 0] = 3 * tiny
    inits = [init("w_zero_channel", w_zero_channel),
             init("w_all_equal", np.full((4, 3, 3, 3), 0.25, np.float32)),
             init("w_all_zero", np.zeros((4, 3, 3, 3), np.float32)),
             init("w_subnormal", w_subnormal)]
    names = ["conv_zero_channel", "conv_all_equal", "conv_all_zero", "conv_subnormal"]
    nodes = [helper.make_node("Conv", ["x", t.name], [f"y{i}"], name=n) for i, (t, n) in enumerate(zip(inits, names))]
    graph = helper.make_graph(nodes, "zero_and_constant", [vi("x", F, [1, 3, 8, 8])],
                              [vi(f"y{i}", F) for i in range(4)], inits)
    return make_model(graph, 13), {}


def large_weights():
    """Weights larger than the 4 MB piece the JS API streams through, so the
    statistics arrive in several pieces per pass: a Gemm (transB=1, run mode), a
    MatMul [K, N] (row mode, N not a multiple of 4), a float16 MatMul, and a channel of
    1e-30 values in each float32 one (its float32 squares underflow: a third pass)."""
    rng = np.random.default_rng(211)
    gemm = uneven(rng, (1501, 1003), big=(7, 900))
    gemm[11] = (rng.normal(0, 1, 1003) * 1e-30).astype(np.float32)
    mm = uneven(rng, (1203, 1251), axis=1, big=(3, 1250))
    mm[:, 5] = (rng.normal(0, 1, 1203) * 1e-30).astype(np.float32)
    half = uneven(rng, (1251, 1999), axis=1, big=(1,)).astype(np.float16)
    inits = [init("gemm_w", gemm), init("mm_w", mm), init("half_w", half)]
    nodes = [helper.make_node("Gemm", ["x", "gemm_w"], ["g"], name="big_gemm", transB=1),
             helper.make_node("MatMul", ["x2", "mm_w"], ["m"], name="big_matmul"),
             helper.make_node("Cast", ["half_w"], ["half_f"], name="cast_half", to=F),
             helper.make_node("MatMul", ["m", "half_f"], ["h"], name="half_matmul")]
    graph = helper.make_graph(nodes, "large_weights", [vi("x", F, [1, 1003]), vi("x2", F, [1, 1203])],
                              [vi("g", F), vi("h", F)], inits)
    return make_model(graph, 13), {}


# ----------------------------------------------------------------------------
# Cross Layer Equalization cases: every sequence kind and every kind of stop.
# Each layer's output channels are uneven (one channel x50) so that CLE has work.

class Net:
    """A tiny graph builder for the CLE cases."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.inits, self.nodes = [], []

    def const(self, name, array):
        self.inits.append(init(name, array))
        return name

    def op(self, op_type, inputs, name, **kw):
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **kw))
        return name

    def conv(self, x, name, cin, cout, k=1, group=1, bias=True, pads=None, op="Conv"):
        shape = (cout, cin // group, k, k) if op == "Conv" else (cin, cout // group, k, k)
        axis = 0 if op == "Conv" else 1
        w = uneven(self.rng, shape, axis=axis, big=(int(self.rng.integers(shape[axis])),), sigma=0.3)
        ins = [x, self.const(f"{name}.w", w)]
        if bias:
            ins.append(self.const(f"{name}.b", self.rng.normal(0, 0.1, cout).astype(np.float32)))
        kw = {"group": group} if group != 1 else {}
        if pads:
            kw["pads"] = pads
        return self.op(op, ins, name, **kw)

    def bn(self, x, name, c, beta_mean=0.0):
        r = self.rng
        ps = [self.const(f"{name}.{k}", v.astype(np.float32)) for k, v in (
            ("scale", r.uniform(0.5, 1.5, c)), ("bias", r.normal(beta_mean, 0.1, c)),
            ("mean", r.normal(0, 0.1, c)), ("var", r.uniform(0.5, 1.5, c)))]
        return self.op("BatchNormalization", [x] + ps, name, epsilon=1e-3)


def cle_convnet():
    """Conv+BN+Relu -> depthwise+BN+ReLU6 (Clip inputs) -> pointwise -> MaxPool, zero Pad ->
    grouped conv -> LeakyRelu -> depthwise x2 -> PRelu -> AveragePool -> ConvTranspose
    (group 2) -> Relu -> Conv: one long sequence through every commuting op."""
    n = Net(201)
    zero, six = n.const("zero", np.float32(0)), n.const("six", np.float32(6))
    h = n.op("Relu", [n.bn(n.conv("x", "c1", 3, 8, k=3, bias=False, pads=[1, 1, 1, 1]), "bn1", 8)], "r1")
    h = n.op("Clip", [n.bn(n.conv(h, "c2_dw", 8, 8, k=3, group=8, pads=[1, 1, 1, 1]), "bn2", 8), zero, six], "relu6_2")
    h = n.op("Relu", [n.conv(h, "c3", 8, 16)], "r3")
    h = n.op("MaxPool", [h], "pool3", kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("Pad", [h, n.const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], "pad3")
    h = n.op("LeakyRelu", [n.conv(h, "c4_grouped", 16, 16, k=3, group=4)], "lrelu4", alpha=0.1)
    h = n.op("PRelu", [n.conv(h, "c5_dw_x2", 16, 32, k=3, group=16, pads=[1, 1, 1, 1]),
                       n.const("slope", np.full((32, 1, 1), 0.2, np.float32))], "prelu5")
    h = n.op("AveragePool", [n.conv(h, "c6", 32, 8)], "avg6", kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("Relu", [n.conv(h, "c7_convT", 8, 4, k=2, group=2, op="ConvTranspose")], "r7")
    out = n.conv(h, "c8", 4, 4)
    graph = helper.make_graph(n.nodes, "cle_convnet", [vi("x", F, [1, 3, 16, 16])], [vi(out, F)], n.inits)
    return make_model(graph, 13), {}


def cle_mlp():
    """BN before a Gemm, Gemm (transB, alpha, beta) -> Relu -> Gemm without C -> LeakyRelu ->
    MatMul + Add bias -> Relu -> MatMul: an MLP, which AIMET does not equalize."""
    n = Net(202)
    r = n.rng
    h = n.bn("m", "bn0", 16)
    h = n.op("Gemm", [h, n.const("g1.w", uneven(r, (32, 16), axis=0, sigma=0.3)),
                      n.const("g1.c", r.normal(0, 0.1, 32).astype(np.float32))], "g1", transB=1, alpha=0.5, beta=2.0)
    h = n.op("Relu", [h], "r1")
    h = n.op("LeakyRelu", [n.op("Gemm", [h, n.const("g2.w", uneven(r, (32, 24), axis=1, sigma=0.3))], "g2")], "lr2", alpha=0.2)
    h = n.op("Add", [n.op("MatMul", [h, n.const("m3.w", uneven(r, (24, 12), axis=1, sigma=0.3))], "m3"),
                     n.const("m3.b", r.normal(0, 0.1, 12).astype(np.float32))], "m3_add")
    h = n.op("Relu", [h], "r3")
    out = n.op("MatMul", [h, n.const("m4.w", uneven(r, (12, 5), axis=1, sigma=0.3))], "m4")
    graph = helper.make_graph(n.nodes, "cle_mlp", [vi("m", F, [4, 16])], [vi(out, F)], n.inits)
    return make_model(graph, 13), {}


def cle_stops():
    """Where sequences must stop: a branch, a residual Add, a graph output in the middle,
    Clip(0, 4), Sigmoid, a weight shared by two convs, BN before a padded conv, and
    ReLU6 as Clip attributes (opset 10) that still forms a pair."""
    n = Net(203)
    a = n.op("Relu", [n.conv("x", "a", 3, 8)], "ra")
    b = n.conv(a, "b_branch1", 8, 8)
    c = n.conv(a, "c_branch2", 8, 8)
    d = n.op("Relu", [n.op("Add", [b, c], "residual")], "rd")
    e = n.op("Sigmoid", [n.conv(d, "e", 8, 8)], "sig_e")
    f = n.conv(e, "f_output_mid", 8, 8)             # its output is also a graph output
    g = n.conv(n.op("Relu", [f], "rf"), "g", 8, 8)
    h = n.op("Clip", [n.conv(g, "h", 8, 8)], "clip04", min=0.0, max=4.0)
    i = n.conv(h, "i", 8, 8)
    relu6 = n.op("Clip", [n.conv(i, "j", 8, 8)], "relu6_attr", min=0.0, max=6.0)
    k = n.conv(relu6, "k", 8, 8)
    n.nodes.append(helper.make_node("Conv", [k, "k.w"], ["shared_use"], name="l_shares_k_weight"))
    m = n.conv(n.bn("shared_use", "bn_before_padded", 8), "m_padded", 8, 8, k=3, pads=[1, 1, 1, 1])
    graph = helper.make_graph(n.nodes, "cle_stops", [vi("x", F, [1, 3, 8, 8])], [vi(m, F), vi(f, F)], n.inits)
    return make_model(graph, 10), {}


def cle_dead_channels():
    """Output channels of max|w| 1e-20 and exactly 0 (with biases) before a Relu and a
    1x1 conv, as real exports have: equalizing them naively needs scales of 1e10."""
    n = Net(204)
    w = uneven(n.rng, (8, 3, 3, 3), sigma=0.3)
    w[2] *= 1e-20 / np.abs(w[2]).max()
    w[5] = 0
    x = n.op("Conv", ["x", n.const("c1.w", w.astype(np.float32)), n.const("c1.b", np.full(8, 0.5, np.float32))], "c1")
    out = n.conv(n.op("Relu", [x], "r1"), "c2", 8, 4)
    graph = helper.make_graph(n.nodes, "cle_dead_channels", [vi("x", F, [1, 3, 8, 8])], [vi(out, F)], n.inits)
    return make_model(graph, 13), {}


def cle_shared_bias():
    """PyTorch >= 1.13 exports share identical initializers (zero biases, for one)
    between layers, through Identity nodes or directly: each equalized layer must get a
    bias of its own and leave the others' alone."""
    n = Net(205)
    r = n.rng
    zero = n.const("zero_bias", np.zeros(8, np.float32))
    n.nodes.append(helper.make_node("Identity", [zero], ["zero_bias_1"], name="Identity_1"))
    n.nodes.append(helper.make_node("Identity", [zero], ["zero_bias_2"], name="Identity_2"))

    def conv(x, name, bias):
        w = uneven(r, (8, 8 if x != "x" else 3, 1, 1), big=(int(r.integers(8)),), sigma=0.3)
        return n.op("Conv", [x, n.const(f"{name}.w", w), bias], name)

    h = n.op("Relu", [conv("x", "a", "zero_bias_1")], "ra")
    h = n.op("Relu", [conv(h, "b", "zero_bias_2")], "rb")
    h = n.op("Relu", [conv(h, "c", zero)], "rc")          # the shared initializer itself
    out = conv(h, "d", zero)
    graph = helper.make_graph(n.nodes, "cle_shared_bias", [vi("x", F, [1, 3, 4, 4])], [vi(out, F)], n.inits)
    return make_model(graph, 13), {}


def hostile_split_pads():
    """Conv -> Pad whose amounts are one piece of a Split of a constant, with sizes read
    from the file: a negative size (-1) and sizes whose sum wraps past the end must be
    refused before anything is indexed (they once read 32 KB before the buffer), and an
    honest split (the third Pad) still lets the sequence through."""
    n = Net(207)
    h = n.op("Relu", [n.conv("x", "c1", 3, 8, k=3)], "r1")
    all_pads = n.const("all_pads", np.array([0, 0, 1, 1, 0, 0, 1, 1] * 2, np.int64))
    for k, sizes in enumerate(([-1, 17], [2 ** 62, 2 ** 62 + 8], [8, 8])):
        pieces = [f"pads{k}", f"rest{k}"]
        n.nodes.append(helper.make_node("Split", [all_pads, n.const(f"sizes{k}", np.array(sizes, np.int64))], pieces,
                                        name=f"split{k}", axis=0))
        h = n.op("Pad", [h, pieces[0]], f"pad{k}")
        h = n.op("Relu", [n.conv(h, f"c{k + 2}", 8, 8, k=3)], f"r{k + 2}")
    graph = helper.make_graph(n.nodes, "hostile_split_pads", [vi("x", F, [1, 3, 32, 32])], [vi(h, F)], n.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])  # no shape inference: it refuses the sizes
    model.ir_version = 8
    return model, {}


def input_channels():
    """Outliers in input channels, where SmoothQuant and AWQ look: a MatMul B [32, 24]
    whose input row 5 is scaled x50 (every output column then holds one large value:
    the output channels' ranges cannot point at row 5), a Gemm transB=1 [12, 24] whose input column 17
    is scaled x50, and a grouped Conv [8, 2, 3, 3] (group 4) whose input channel 5
    (group 2, second of its two) is scaled x50 in both of that group's filters."""
    rng = np.random.default_rng(131)
    mm = rng.normal(0.0, 0.1, size=(32, 24))
    mm[5, :] *= 50.0
    gemm = rng.normal(0.0, 0.1, size=(12, 24))
    gemm[:, 17] *= 50.0
    conv = rng.normal(0.0, 0.1, size=(8, 2, 3, 3))
    conv[4:6, 1] *= 50.0
    nodes = [
        helper.make_node("MatMul", ["x", "mm_in_row5"], ["h"], name="matmul_input_row5"),
        helper.make_node("Gemm", ["h", "gemm_in_col17"], ["y"], name="gemm_transB1_input_col17", transB=1),
        helper.make_node("Conv", ["c", "conv_group4_in5"], ["z"], name="conv_group4_input5", group=4),
    ]
    arrays = {"mm_in_row5": mm, "gemm_in_col17": gemm, "conv_group4_in5": conv}
    graph = helper.make_graph(
        nodes, "input_channels", [vi("x", F, [4, 32]), vi("c", F, [1, 8, 6, 6])], [vi("y", F), vi("z", F)],
        [init(k, v.astype(np.float32)) for k, v in arrays.items()])
    return make_model(graph, 13), {}


def recurrent():
    """LSTM, GRU and RNN layers, each two QuantLens layers (W and R), from the ONNX operator
    specifications: W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H]. X is [T=5, N=2, I=6].
    lstm_bidirectional (H 8, with B and peepholes P), gru_lbr0 (H 7, linear_before_reset 0),
    gru_lbr1 (H 5, reverse, linear_before_reset 1), rnn_forward (H 4, no B), lstm_dq (H 4, W and
    R int8 through DequantizeLinear, per axis 1: one scale per gate row), and a MatMul whose
    output feeds lstm_after_matmul directly (CLE stops there: "recurrent layer"). Channel
    ranges are uneven along the gate rows (axis 1), one direction of the LSTM wider."""
    rng = np.random.default_rng(1207)
    T, N, I = 5, 2, 6
    inits, nodes, outputs = [], [], []

    def weights(name, D, G, H, cols, big):
        w = uneven(rng, (D, G * H, cols), axis=1, big=big, sigma=0.2)
        inits.append(init(name, w))
        return name

    # 1. LSTM, bidirectional, H = 8, with B and P; the reverse direction twice as wide.
    H = 8
    w = uneven(rng, (2, 4 * H, I), axis=1, big=(5,), sigma=0.2)
    w[1] *= 2.0
    inits += [init("lstm_W", w), init("lstm_R", uneven(rng, (2, 4 * H, H), axis=1, big=(17,), sigma=0.2)),
              init("lstm_B", rng.normal(0, 0.1, (2, 8 * H)).astype(np.float32)),
              init("lstm_P", rng.normal(0, 0.1, (2, 3 * H)).astype(np.float32))]
    nodes.append(helper.make_node("LSTM", ["x", "lstm_W", "lstm_R", "lstm_B", "", "", "", "lstm_P"],
                                  ["lstm_Y", "lstm_Yh", "lstm_Yc"], name="lstm_bidirectional",
                                  hidden_size=H, direction="bidirectional"))
    outputs += ["lstm_Y", "lstm_Yh", "lstm_Yc"]
    # 2, 3. GRU, linear_before_reset 0 (forward) and 1 (reverse).
    for k, (H, lbr, direction) in enumerate([(7, 0, "forward"), (5, 1, "reverse")]):
        name = f"gru_lbr{lbr}"
        weights(f"{name}_W", 1, 3, H, I, (2 + k,))
        weights(f"{name}_R", 1, 3, H, H, (H + 1,))
        inits.append(init(f"{name}_B", rng.normal(0, 0.1, (1, 6 * H)).astype(np.float32)))
        nodes.append(helper.make_node("GRU", ["x", f"{name}_W", f"{name}_R", f"{name}_B"], [f"{name}_Y"], name=name,
                                      hidden_size=H, linear_before_reset=lbr, direction=direction))
        outputs.append(f"{name}_Y")
    # 4. RNN, forward (the default), no B, followed by a Relu.
    weights("rnn_W", 1, 1, 4, I, (1,))
    weights("rnn_R", 1, 1, 4, 4, (3,))
    nodes += [helper.make_node("RNN", ["x", "rnn_W", "rnn_R"], ["rnn_Y"], name="rnn_forward", hidden_size=4),
              helper.make_node("Relu", ["rnn_Y"], ["rnn_relu"], name="rnn_relu")]
    outputs.append("rnn_relu")
    # 5. LSTM with W and R quantized to int8 per gate row (axis 1) through DequantizeLinear.
    H = 4
    for part, cols in (("W", I), ("R", H)):
        q = rng.integers(-30, 31, size=(1, 4 * H, cols))
        q[0, 6] = rng.integers(-127, 128, size=cols)
        inits += [init(f"lstm_dq_{part}q", q.astype(np.int8)),
                  init(f"lstm_dq_{part}s", rng.uniform(0.004, 0.006, 4 * H).astype(np.float32)),
                  init(f"lstm_dq_{part}zp", np.zeros(4 * H, np.int8))]
        nodes.append(helper.make_node("DequantizeLinear", [f"lstm_dq_{part}q", f"lstm_dq_{part}s", f"lstm_dq_{part}zp"],
                                      [f"lstm_dq_{part}"], axis=1))
    nodes.append(helper.make_node("LSTM", ["x", "lstm_dq_W", "lstm_dq_R"], ["lstm_dq_Y"], name="lstm_dq", hidden_size=H))
    outputs.append("lstm_dq_Y")
    # 6. MatMul [6, 10] -> LSTM (H 3): the MatMul's output is the LSTM's X.
    inits.append(init("mm_W", uneven(rng, (I, 10), axis=1, big=(4,), sigma=0.3)))
    weights("lstm_mm_W", 1, 4, 3, 10, (1,))
    weights("lstm_mm_R", 1, 4, 3, 3, (9,))
    inits.append(init("lstm_mm_B", rng.normal(0, 0.1, (1, 24)).astype(np.float32)))
    nodes += [helper.make_node("MatMul", ["x", "mm_W"], ["mm_y"], name="matmul_before_lstm"),
              helper.make_node("LSTM", ["mm_y", "lstm_mm_W", "lstm_mm_R", "lstm_mm_B"], ["lstm_mm_Y"],
                               name="lstm_after_matmul", hidden_size=3)]
    outputs.append("lstm_mm_Y")
    graph = helper.make_graph(nodes, "recurrent", [vi("x", F, [T, N, I])], [vi(o, F) for o in outputs], inits)
    return make_model(graph, 14), {}


def recurrent_gates():
    """One unit per gate (H = 1, I = 1, one step, batch 1), with an initial state given as
    an input, so every weight is one channel of one element and every gate matters: a test
    computes each output from QuantLens's channel labels (gates, direction, unit) and
    compares it with onnxruntime. LSTM (bidirectional, initial_c too), GRU with
    linear_before_reset 0 and 1, RNN. Each weight row holds a different value."""
    rng = np.random.default_rng(1208)
    inits, nodes, inputs, outputs = [], [], [vi("x", F, [1, 1, 1])], []
    for name, op, G, D, extra in (("gate_lstm", "LSTM", 4, 2, {"direction": "bidirectional"}),
                                  ("gate_gru0", "GRU", 3, 1, {"linear_before_reset": 0}),
                                  ("gate_gru1", "GRU", 3, 1, {"linear_before_reset": 1}),
                                  ("gate_rnn", "RNN", 1, 1, {})):
        inits += [init(f"{name}_W", rng.uniform(-2, 2, (D, G, 1)).astype(np.float32)),
                  init(f"{name}_R", rng.uniform(-2, 2, (D, G, 1)).astype(np.float32))]
        ins = ["x", f"{name}_W", f"{name}_R", "", "", f"{name}_h0"]
        inputs.append(vi(f"{name}_h0", F, [D, 1, 1]))
        if op == "LSTM":
            ins.append(f"{name}_c0")
            inputs.append(vi(f"{name}_c0", F, [D, 1, 1]))
        nodes.append(helper.make_node(op, ins, [f"{name}_Y"], name=name, hidden_size=1, **extra))
        outputs.append(f"{name}_Y")
    graph = helper.make_graph(nodes, "recurrent_gates", inputs, [vi(o, F) for o in outputs], inits)
    return make_model(graph, 14), {}


CASES = [
    ("hostile_split_pads.onnx", hostile_split_pads),
    ("typed_float_data.onnx", typed_float_data),
    ("unpacked_fields.onnx", unpacked_fields),
    ("fp16_bf16.onnx", fp16_bf16),
    ("external_data.onnx", external_data),
    ("subgraphs.onnx", subgraphs),
    ("subgraph_shadowing.onnx", subgraph_shadowing),  # not checked: see its comment
    ("constant_nodes.onnx", constant_nodes),
    ("graph_inputs.onnx", graph_inputs),
    ("qdq.onnx", qdq),
    ("layouts.onnx", layouts),
    ("followers.onnx", followers),
    ("followers_opset10.onnx", followers_opset10),
    ("hostile_names.onnx", hostile_names),
    ("zero_and_constant.onnx", zero_and_constant),
    ("large_weights.onnx", large_weights),
    ("cle_convnet.onnx", cle_convnet),
    ("cle_mlp.onnx", cle_mlp),
    ("cle_stops.onnx", cle_stops),
    ("cle_dead_channels.onnx", cle_dead_channels),
    ("cle_shared_bias.onnx", cle_shared_bias),
    ("input_channels.onnx", input_channels),
    ("recurrent.onnx", recurrent),
    ("recurrent_gates.onnx", recurrent_gates),
]

# Cases that are large on purpose (weights bigger than the API's 4 MB streaming piece).
LARGE = {large_weights}

# Deliberately odd cases that onnx.checker rejects.
UNCHECKED = {subgraph_shadowing, hostile_split_pads}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print(f"wrote {path} ({len(data)} bytes)")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_test_models.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for filename, build in CASES:
        model, extra = build()
        data = model if isinstance(model, bytes) else model.SerializeToString()
        assert len(data) < 200 * 1024 or build in LARGE, filename
        # Extra files first: external data is resolved next to the model.
        for name, blob in extra.items():
            write(os.path.join(outdir, name), blob)
        parsed = onnx.load_from_string(data)
        if extra:
            load_external_data_for_model(parsed, outdir)
        if build not in UNCHECKED:
            onnx.checker.check_model(parsed, full_check=True)
        write(os.path.join(outdir, filename), data)


if __name__ == "__main__":
    main()
