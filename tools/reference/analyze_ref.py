#!/usr/bin/python3
"""Independent reference analysis of an ONNX model's weights (QuantLens).

Usage: /usr/bin/python3 tools/reference/analyze_ref.py MODEL.onnx [--bins 128] [--block-size N]

Prints one JSON document (schema "quantlens.analysis/1") on stdout: every
weight-carrying layer, where its weight is stored, its output-channel axis, what
follows it, and per-output-channel statistics with data-free INT8/INT4 fake
quantization error (SQNR), including block-wise INT4 (one scale per block of 32 or
128 weights, and --block-size N, along the reduction elements of each output channel).

This script is written from the written definitions only; it shares no code with
the C++ core and must stay that way, so that the two can check each other.
It needs the `onnx` and `numpy` Python packages (Debian: python3-onnx,
python3-numpy) and decodes tensor payloads itself with numpy.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto

DEFAULT_DOMAINS = ("", "ai.onnx")

# Ops that carry a weight, and which of their inputs holds it.
WEIGHT_INPUT = {
    "Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1,
    "ConvInteger": 1, "MatMulInteger": 1,
    "QLinearConv": 3, "QLinearMatMul": 3,
}
CONV_FAMILY = ("Conv", "QLinearConv", "ConvInteger")
MATMUL_FAMILY = ("MatMul", "MatMulInteger", "QLinearMatMul")
# Bias as an input of the op itself.
BIAS_INPUT = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2, "QLinearConv": 8}

# TensorProto element type -> (name reported in JSON, numpy dtype of the value,
# repeated field holding it when not in raw_data).
ELEMENT_TYPES = {
    TensorProto.FLOAT: ("float32", np.float32, "float_data"),
    TensorProto.DOUBLE: ("float64", np.float64, "double_data"),
    TensorProto.FLOAT16: ("float16", np.float16, "int32_data"),
    TensorProto.BFLOAT16: ("bfloat16", None, "int32_data"),  # decoded by hand
    TensorProto.INT8: ("int8", np.int8, "int32_data"),
    TensorProto.UINT8: ("uint8", np.uint8, "int32_data"),
    TensorProto.INT16: ("int16", np.int16, "int32_data"),
    TensorProto.UINT16: ("uint16", np.uint16, "int32_data"),
    TensorProto.INT32: ("int32", np.int32, "int32_data"),
    TensorProto.INT64: ("int64", np.int64, "int64_data"),
    TensorProto.UINT32: ("uint32", np.uint32, "uint64_data"),
    TensorProto.UINT64: ("uint64", np.uint64, "uint64_data"),
    TensorProto.BOOL: ("bool", np.bool_, "int32_data"),
}


# Block-wise INT4 block sizes measured: 32 and 128, then --block-size when another.
BLOCK_SIZES = [32, 128]

# Types decoded by hand (onnx 1.12 knows neither): int4 / uint4 and the four float8 types.
INT4, UINT4 = 22, 21
FLOAT8 = {17: ("float8e4m3fn", 4, 7), 18: ("float8e4m3fnuz", 4, 8),
          19: ("float8e5m2", 5, 15), 20: ("float8e5m2fnuz", 5, 16)}  # name, exponent bits, bias


def float8_values(codes, data_type):
    """float8 codes (uint8) -> float32, from the ONNX "Float8 types" page: S, E exponent bits,
    M = 7 - E mantissa bits; exponent 0 is subnormal (m / 2^M * 2^(1 - bias)), otherwise
    (1 + m / 2^M) * 2^(e - bias). E4M3FN: S.1111.111 is NaN, no infinity. E5M2: exponent
    all ones is infinity (m = 0) or NaN. FNUZ types: 0x80 is the only NaN."""
    name, ebits, bias = FLOAT8[data_type]
    mbits = 7 - ebits
    c = codes.astype(np.int64)
    e = (c >> mbits) & ((1 << ebits) - 1)
    m = c & ((1 << mbits) - 1)
    mag = np.where(e == 0, np.ldexp(m.astype(np.float64), 1 - bias - mbits),
                   np.ldexp((m + (1 << mbits)).astype(np.float64), e - bias - mbits))
    v = np.where(c & 0x80, -mag, mag)
    top = (1 << ebits) - 1
    if name == "float8e4m3fn":
        v = np.where((e == top) & (m == (1 << mbits) - 1), np.nan, v)
    elif name == "float8e5m2":
        v = np.where(e == top, np.where(m == 0, np.copysign(np.inf, v), np.nan), v)
    else:
        v = np.where(c == 0x80, np.nan, v)
    return v.astype(np.float32)


def int4_values(packed, count, signed):
    """Bytes holding two 4-bit elements each (the first in the low nibble) -> count values."""
    b = np.asarray(packed, dtype=np.uint8)
    nib = np.stack([b & 0x0F, b >> 4], axis=1).ravel()[:count].astype(np.int8)
    return np.where(nib >= 8, nib - 16, nib).astype(np.int8) if signed else nib.astype(np.uint8)


class NotALayer(Exception):
    """Raised when a weight-like node cannot be analysed (reason in the message)."""


def is_default(node):
    return node.domain in DEFAULT_DOMAINS


def attr(node, name, default=None):
    """Value of a node attribute (ints, floats, strings, lists, tensors), or default."""
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def dtype_name(data_type):
    if data_type in ELEMENT_TYPES:
        return ELEMENT_TYPES[data_type][0]
    if data_type in FLOAT8:
        return FLOAT8[data_type][0]
    if data_type in (INT4, UINT4):
        return "int4" if data_type == INT4 else "uint4"
    return TensorProto.DataType.Name(data_type).lower()


def tensor_to_array(t):
    """Decode a TensorProto (raw_data little-endian, or its typed repeated field).

    External data has already been pulled into raw_data by onnx.load.
    float16/bfloat16 in int32_data hold the 16-bit pattern in the low bits.
    """
    if t.data_type in (INT4, UINT4) or t.data_type in FLOAT8:
        dims = tuple(int(d) for d in t.dims)
        count = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if t.HasField("raw_data"):
            raw = np.frombuffer(t.raw_data, dtype=np.uint8)
        else:  # int32_data: one value per element (float8) or per packed byte (4-bit)
            raw = (np.asarray(t.int32_data, dtype=np.int64) & 0xFF).astype(np.uint8)
        if t.data_type in FLOAT8:
            if raw.size != count:
                raise NotALayer(f"tensor {t.name!r}: {raw.size} values for dims {list(dims)}")
            return float8_values(raw, t.data_type).reshape(dims)
        if raw.size != (count + 1) // 2:
            raise NotALayer(f"tensor {t.name!r}: {raw.size} bytes for {count} 4-bit elements")
        return int4_values(raw, count, t.data_type == INT4).reshape(dims)
    if t.data_type not in ELEMENT_TYPES:
        raise NotALayer(f"tensor {t.name!r}: unsupported element type {dtype_name(t.data_type)}")
    _, np_type, field = ELEMENT_TYPES[t.data_type]
    dims = tuple(int(d) for d in t.dims)
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if t.HasField("raw_data"):
        raw = t.raw_data
        if t.data_type == TensorProto.BFLOAT16:
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        else:
            values = np.frombuffer(raw, dtype=np.dtype(np_type).newbyteorder("<"))
    else:
        data = getattr(t, field)
        if t.data_type == TensorProto.FLOAT16:
            values = np.asarray(data, dtype=np.int64).astype(np.uint16).view(np.float16)
        elif t.data_type == TensorProto.BFLOAT16:
            bits = (np.asarray(data, dtype=np.int64) & 0xFFFF).astype(np.uint32) << 16
            values = bits.view(np.float32)
        else:
            values = np.asarray(data).astype(np_type)
    if values.size != count:
        raise NotALayer(f"tensor {t.name!r}: {values.size} values for dims {list(dims)}")
    return values.reshape(dims)


class Scope:
    """Names visible in one graph, with a link to the enclosing graph's scope.

    constants: initializers and outputs of Constant nodes that carry a `value`
    tensor. producers: every node output of this graph. Names produced by a
    (non-constant) node here, or formal inputs of a sub-graph, shadow outer names.
    """

    def __init__(self, graph, parent=None):
        self.graph = graph
        self.parent = parent
        self.constants = {t.name: t for t in graph.initializer}
        self.producers = {}
        for node in graph.node:
            for out in node.output:
                if out:
                    self.producers[out] = node
            if node.op_type == "Constant" and is_default(node) and node.output:
                value = attr(node, "value")
                if isinstance(value, TensorProto):
                    self.constants[node.output[0]] = value
        # Formal inputs of a sub-graph are runtime values (unless also initializers,
        # as old exporters list weights among the main graph's inputs).
        self.runtime_inputs = {i.name for i in graph.input if i.name not in self.constants}

    def lookup(self, name):
        """('const', TensorProto) | ('node', NodeProto, Scope) | None (runtime value)."""
        scope = self
        while scope is not None:
            node = scope.producers.get(name)
            if node is not None:
                if name in scope.constants:
                    return ("const", scope.constants[name])
                return ("node", node, scope)
            if name in scope.constants:
                return ("const", scope.constants[name])
            if name in scope.runtime_inputs:
                return None
            scope = scope.parent
        return None

    def constant(self, name):
        hit = self.lookup(name) if name else None
        return hit[1] if hit and hit[0] == "const" else None

    def scalar(self, name):
        """A one-element constant (initializer, Constant tensor, Constant value_float /
        value_int) as a float, or None."""
        hit = self.lookup(name) if name else None
        if hit is None:
            return None
        if hit[0] == "const":
            values = tensor_to_array(hit[1]).astype(np.float64).ravel()
            return float(values[0]) if values.size == 1 else None
        node = hit[1]
        if node.op_type == "Constant" and is_default(node):
            for key in ("value_float", "value_int"):
                v = attr(node, key)
                if v is not None:
                    return float(v)
        return None


def resolve_weight(name, scope, depth=0):
    """Follow a value back through Identity, Cast, Transpose and DequantizeLinear to
    a stored constant. Returns a dict:
      tensor: the stored TensorProto; name: its graph name;
      perm: perm[k] = stored axis that axis k of `name` came from;
      dq: None or dict(via, scale, zero_point, axis (stored) or None)
    or None when `name` does not come from a constant.
    """
    if depth > 64:
        return None
    hit = scope.lookup(name)
    if hit is None:
        return None
    if hit[0] == "const":
        t = hit[1]
        return {"tensor": t, "name": name, "perm": list(range(len(t.dims))), "dq": None}
    node, node_scope = hit[1], hit[2]
    if not is_default(node) or not node.input:
        return None
    op = node.op_type
    if op in ("Identity", "Cast"):
        return resolve_weight(node.input[0], node_scope, depth + 1)
    if op == "Transpose":
        inner = resolve_weight(node.input[0], node_scope, depth + 1)
        if inner is None:
            return None
        rank = len(inner["perm"])
        perm = attr(node, "perm")
        perm = list(perm) if perm else list(reversed(range(rank)))
        if sorted(perm) != list(range(rank)):
            return None
        inner["perm"] = [inner["perm"][p] for p in perm]
        return inner
    if op == "DequantizeLinear":
        inner = resolve_weight(node.input[0], node_scope, depth + 1)
        if inner is None or inner["dq"] is not None:
            return None
        scale = node_scope.constant(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            return None
        zp_name = node.input[2] if len(node.input) > 2 else ""
        zp = node_scope.constant(zp_name) if zp_name else None
        if zp_name and zp is None:
            return None
        rank = len(inner["perm"])
        axis = int(attr(node, "axis", 1))
        block = int(attr(node, "block_size", 0))
        scale_values = tensor_to_array(scale)
        stored_axis = None
        if scale_values.size != 1 or block:  # per-axis or per-block
            if axis < 0:
                axis += rank
            if not 0 <= axis < rank:
                return None
            stored_axis = inner["perm"][axis]
        inner["dq"] = {"via": "DequantizeLinear", "scale": scale_values,
                       "zero_point": tensor_to_array(zp) if zp is not None else None,
                       "axis": stored_axis, "block": block}
        return inner
    return None


def dequantize(q, scale, zero_point, axis, block=0):
    """y = (float32(q) - float32(zp)) * float32(scale), per-axis along `axis`
    (stored axis) or per-tensor when axis is None. With block > 0 (DequantizeLinear opset
    21), scale and zero point have q's shape with shape[axis] = ceil(shape[axis] / block):
    each is repeated `block` times along the axis and cut to q's length."""
    if block:
        if block < 0:
            raise NotALayer(f"block_size {block}")
        s = np.asarray(scale, dtype=np.float32)
        z = np.zeros(1, np.float32) if zero_point is None else np.asarray(zero_point).astype(np.float32)
        want = list(q.shape)
        want[axis] = -(-q.shape[axis] // block)
        if list(s.shape) != want or (zero_point is not None and list(z.shape) != want):
            raise NotALayer(f"block parameters of shape {list(s.shape)}, expected {want}")
        n = q.shape[axis]
        s = np.repeat(s, block, axis=axis).take(np.arange(n), axis=axis)
        if zero_point is not None:
            z = np.repeat(z, block, axis=axis).take(np.arange(n), axis=axis)
        return (q.astype(np.float32) - z) * s
    q = q.astype(np.float32)
    scale = np.asarray(scale).astype(np.float32).ravel()
    zp = (np.zeros(1, np.float32) if zero_point is None
          else np.asarray(zero_point).astype(np.float32).ravel())
    if axis is None:
        return (q - zp[0]) * scale[0]
    shape = [1] * q.ndim
    shape[axis] = q.shape[axis]
    if scale.size == 1:
        scale = np.repeat(scale, q.shape[axis])
    if zp.size == 1:
        zp = np.repeat(zp, q.shape[axis])
    if scale.size != q.shape[axis] or zp.size != q.shape[axis]:
        raise NotALayer(f"quantization parameters do not match axis {axis} of size {q.shape[axis]}")
    return (q - zp.reshape(shape)) * scale.reshape(shape)


# ----------------------------------------------------------------------------
# Followers

def consumers(graph, name):
    """Nodes of this graph that take `name` as an input (each node once)."""
    return [n for n in graph.node if name in n.input]


def classify(graph, scope, name, opset):
    """Follower kind of value `name`, and the consuming node when there is one."""
    users = consumers(graph, name)
    if not users:
        return "none", None
    if len(users) == 2:
        ops = {u.op_type: u for u in users if is_default(u)}
        if set(ops) == {"Sigmoid", "Mul"} and ops["Sigmoid"].output and \
                ops["Sigmoid"].output[0] in ops["Mul"].input:
            return "silu", ops["Mul"]
    if len(users) > 1:
        return "multiple", None
    user = users[0]
    if not is_default(user):
        return "other", user
    simple = {"BatchNormalization": "batchnorm", "Relu": "relu", "PRelu": "prelu",
              "LeakyRelu": "leakyrelu"}
    if user.op_type in simple:
        return simple[user.op_type], user
    if user.op_type == "Clip":
        lo, hi = -math.inf, math.inf
        if opset < 11:
            lo = float(attr(user, "min", lo))
            hi = float(attr(user, "max", hi))
        else:
            if len(user.input) > 1 and user.input[1]:
                v = scope.scalar(user.input[1])
                lo = v if v is not None else lo
            if len(user.input) > 2 and user.input[2]:
                v = scope.scalar(user.input[2])
                hi = v if v is not None else hi
        return ("relu6" if (lo, hi) == (0.0, 6.0) else "clip"), user
    return "other", user


# ----------------------------------------------------------------------------
# Statistics

def sqnr_db(signal, noise):
    """10 log10(signal / noise); +inf when nothing is lost."""
    signal = np.asarray(signal, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(signal / noise)
    return np.where(noise == 0, np.inf, out)


def fake_quant_error(w, abs_max, qmax):
    """Symmetric fake quantization in float32; returns the error w - deq.
    w: float32 [C, M]; abs_max: float32 broadcastable to w."""
    qmax = np.float32(qmax)
    s = np.asarray(abs_max, dtype=np.float32) / qmax
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.float32(1) / s  # inf where s is 0 or subnormal enough to overflow
    bad = ~np.isfinite(inv) | (s <= 0)  # such a scale quantizes everything to 0
    inv = np.where(bad, np.float32(0), inv).astype(np.float32)
    s = np.where(bad, np.float32(0), s).astype(np.float32)
    y = w * inv
    y = np.clip(y, -qmax, qmax)
    q = np.round(y)  # half to even
    deq = q * s
    e = w - deq
    assert e.dtype == np.float32
    return e


def tukey_flags(magnitudes):
    """AIMET's rule on one magnitude per channel: relative to the smallest non-zero one
    (all 0 when none is), flagged above Q3 + 1.5 (Q3 - Q1) (numpy's linear percentiles)."""
    m = np.asarray(magnitudes)
    nonzero = m[m > 0]
    if nonzero.size:
        rel = m.astype(np.float64) / np.float64(nonzero.min())
    else:
        rel = np.zeros(m.shape, np.float64)
    q1, q3 = np.percentile(rel, [25, 75]) if rel.size else (0.0, 0.0)
    threshold = q3 + 1.5 * (q3 - q1)
    return rel, float(q1), float(q3), float(threshold), np.nonzero(rel > threshold)[0]


def input_channel_stats(absmax, axis):
    """absmax: float32, one value per input channel of the layer's input."""
    absmax = np.asarray(absmax, np.float32).ravel()
    rel, q1, q3, threshold, flagged = tukey_flags(absmax)
    return {"count": int(absmax.size), "axis": int(axis), "absMax": absmax,
            "relativeAbsMax": rel, "outliers": flagged, "quartiles": [q1, q3],
            "threshold": threshold}


def block_sqnr(rows, block):
    """Block-wise symmetric INT4: rows float32 [C, M], row c = the reduction elements
    of output channel c in the stored tensor's memory order, cut into blocks of `block`
    consecutive elements (the last one partial); each block quantized to +-7 with
    scale = its absMax / 7. Returns (per-channel noise, float64 [C])."""
    c, m = rows.shape
    nb = -(-m // block)
    # Zero padding to whole blocks changes no absMax and adds no error.
    padded = np.zeros((c, nb * block), np.float32)
    padded[:, :m] = rows
    blocks = padded.reshape(c, nb, block)
    abs_max = np.abs(blocks).max(axis=2, keepdims=True)
    e = fake_quant_error(blocks, abs_max, 7).astype(np.float64)
    return (e ** 2).sum(axis=(1, 2))


def layer_stats(ch, bins, rows=None, block_sizes=(32, 128)):
    """ch: float32 [C, M], row c = the values of output channel c. rows: the same
    values in the stored tensor's memory order (the order blocks run in; ch if None)."""
    ch = ch.astype(np.float32, copy=False)
    c_min = ch.min(axis=1)
    c_max = ch.max(axis=1)
    ch64 = ch.astype(np.float64)
    c_mean = ch64.mean(axis=1)
    c_std = ch64.std(axis=1)  # population
    c_absmax = np.maximum(np.abs(c_min), np.abs(c_max))
    c_range = (c_max - c_min).astype(np.float32)

    # AIMET-style problematic channels on relative ranges.
    nonzero = c_range[c_range > 0]
    if nonzero.size:
        rel = c_range.astype(np.float64) / np.float64(nonzero.min())
    else:
        rel = np.zeros(c_range.shape, np.float64)
    q1, q3 = np.percentile(rel, [25, 75])
    threshold = q3 + 1.5 * (q3 - q1)
    outliers = np.nonzero(rel > threshold)[0]

    t_min = np.float32(ch.min())
    t_max = np.float32(ch.max())
    t_absmax = np.float32(max(abs(t_min), abs(t_max)))

    signal_c = (ch64 ** 2).sum(axis=1)
    signal = (ch64 ** 2).sum()
    layer_sqnr, channel_sqnr = {}, {}
    for bits_name, qmax in (("int8", 127), ("int4", 7)):
        for mode, abs_max in (("PerTensor", t_absmax), ("PerChannel", c_absmax[:, None])):
            e = fake_quant_error(ch, abs_max, qmax).astype(np.float64)
            noise_c = (e ** 2).sum(axis=1)
            noise = (e ** 2).sum()
            key = bits_name + mode
            layer_sqnr[key] = float(sqnr_db(signal, noise))
            channel_sqnr[key] = sqnr_db(signal_c, noise_c)
    rows = ch if rows is None else rows.astype(np.float32, copy=False)
    assert rows.shape == ch.shape
    for block in block_sizes:
        noise_c = block_sqnr(rows, block)
        key = f"int4Block{block}"
        layer_sqnr[key] = float(sqnr_db(signal, noise_c.sum()))
        channel_sqnr[key] = sqnr_db(signal_c, noise_c)

    # Histogram over [tensor min, tensor max], float32.
    width = np.float32(t_max - t_min)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        hs = np.float32(bins) / width if width != 0 else np.float32(0)
    if not np.isfinite(hs):
        hs = np.float32(0)
    h = ((ch.ravel() - t_min) * np.float32(hs)).astype(np.float32)
    idx = np.where(h >= bins - 1, bins - 1, np.maximum(0, np.floor(h))).astype(np.int64)
    counts = np.bincount(idx, minlength=bins)

    return {
        "channels": {
            "count": int(ch.shape[0]),
            "min": c_min, "max": c_max, "mean": c_mean, "std": c_std,
            "absMax": c_absmax, "range": c_range, "relativeRange": rel,
            "sqnr": channel_sqnr,
        },
        "tensor": {"min": t_min, "max": t_max, "mean": float(ch64.mean()),
                   "std": float(ch64.std()), "absMax": t_absmax},
        "histogram": {"min": t_min, "max": t_max, "counts": counts},
        "outlierChannels": outliers,
        "outlierThreshold": float(threshold),
        "sqnr": layer_sqnr,
    }


# ----------------------------------------------------------------------------
# Layer discovery

def dynamic_weight_scale(node, graph, scope, channels, ones):
    """ONNX Runtime's quantize_dynamic (operators/conv.py, matmul.py): the op's output goes
    through exactly one Cast to float, whose output exactly one Mul multiplies by
    S = Mul(x_scale, w_scale) (operands in either order), x_scale being output 1 of the
    DynamicQuantizeLinear whose output 0 is the op's input 0, w_scale a constant of one
    value, or of `channels` values laid out along the output's channel axis (`ones`
    trailing ones). Returns (w_scale array, the Mul's output) or (None, why)."""
    why = "weight scale not found (codes shown in integer units)"
    out = node.output[0] if node.output else ""
    users = consumers(graph, out) if out else []
    if len(users) != 1 or users[0].op_type != "Cast" or not is_default(users[0]) \
            or int(attr(users[0], "to", 0)) != TensorProto.FLOAT or not users[0].output:
        return None, why
    cast_out = users[0].output[0]
    muls = consumers(graph, cast_out)
    if len(muls) != 1 or muls[0].op_type != "Mul" or not is_default(muls[0]) or len(muls[0].input) != 2 \
            or muls[0].input[0] == muls[0].input[1] or not muls[0].output:
        return None, why
    mul = muls[0]
    s = mul.input[1] if mul.input[0] == cast_out else mul.input[0]
    hit = scope.lookup(s)
    if hit is None or hit[0] != "node" or hit[1].op_type != "Mul" or not is_default(hit[1]) or len(hit[1].input) != 2:
        return None, why
    smul, s_scope = hit[1], hit[2]
    for xs, ws in ((smul.input[0], smul.input[1]), (smul.input[1], smul.input[0])):
        h = s_scope.lookup(xs)
        w = s_scope.constant(ws)
        if h is None or h[0] != "node" or w is None:
            continue
        dq = h[1]
        if dq.op_type != "DynamicQuantizeLinear" or not is_default(dq) or len(dq.output) < 2 or dq.output[1] != xs:
            continue
        if dq.output[0] != node.input[0]:
            return None, why
        values = tensor_to_array(w)
        dims = list(w.dims)
        if values.size == 1:
            return values, mul.output[0]
        c = len(dims) - ones - 1
        if values.size == channels and c >= 0 and dims[c] == channels and \
                all(d == 1 for i, d in enumerate(dims) if i != c):
            return values, mul.output[0]
        return None, why
    return None, why


def stored_facts(codes, bits, signed, zero_points, granularity, channel_of=None, grid=None):
    """What the stored codes say: codes [C, n] (one row per output channel) and the zero
    points. channel_of[i]: the channel zero point i applies to, -1 for none (checked
    against the type only); None: one zero point is the tensor's, one per channel the
    channels'. grid: float8's distinct finite values, ascending (the codes are values on
    it); None for integers, whose grid is tmin..tmax."""
    if grid is None:
        tmin = -(1 << (bits - 1)) if signed else 0
        tmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        grid = np.arange(tmin, tmax + 1, dtype=np.float64)
        integer = True
    else:
        grid = np.asarray(grid, dtype=np.float64)
        integer = False
    codes = np.asarray(codes).astype(np.float64)
    idx = np.searchsorted(grid, codes)  # every code lies on the grid
    assert np.all(grid[np.minimum(idx, grid.size - 1)] == codes), "a code off the type's grid"
    zp = np.asarray(zero_points, dtype=np.float64).ravel()
    centre = 0.0 if signed else float(1 << (bits - 1))
    symmetric = bool(zp.size > 0 and np.all(zp == centre))
    low = 1 if integer and signed and symmetric else 0
    C, n = codes.shape
    levels = np.array([np.unique(r).size for r in idx], dtype=np.float64)
    imin, imax = idx.min(axis=1), idx.max(axis=1)
    cmin, cmax = grid[imin], grid[imax]
    at_low = (idx == low).sum(axis=1).astype(np.float64)
    at_high = (idx == grid.size - 1).sum(axis=1).astype(np.float64)
    span = np.log2((imax - imin + 1).astype(np.float64))
    ends = at_low + at_high
    outside_used = 0
    if channel_of is None and zp.size == 1:
        outside_used = int(zp[0] < cmin.min() or zp[0] > cmax.max())
    else:
        if channel_of is None:
            channel_of = np.arange(zp.size) if zp.size == C else -np.ones(zp.size, np.int64)
        channel_of = np.asarray(channel_of, dtype=np.int64)
        mapped = channel_of >= 0
        c = channel_of[mapped]
        outside_used = int(np.sum((zp[mapped] < cmin[c]) | (zp[mapped] > cmax[c])))
    return {
        "bits": bits, "signed": signed, "float": not integer, "typeMin": float(grid[0]), "typeMax": float(grid[-1]),
        "lowEnd": float(grid[low]),
        "granularity": granularity, "symmetric": symmetric, "elements": int(codes.size),
        "effectiveBits": float(np.median(np.log2(levels))),
        "spanBits": float(np.median(span)),
        "lowestSpanBits": float(span.min()),
        "saturatedFraction": float(ends.sum() / codes.size),
        "saturatedChannels": int(np.sum(ends > np.maximum(2.0, 0.01 * n))),
        "zeroPointsOutsideUsed": outside_used,
        "zeroPointsOutsideType": int(np.sum((zp < grid[0]) | (zp > grid[-1]))),
        "channels": {"levels": levels, "codeMin": cmin, "codeMax": cmax, "atLow": at_low, "atHigh": at_high},
    }


def float8_grid(data_type):
    """float8's distinct finite values, ascending (-0 and +0 one value)."""
    v = float8_values(np.arange(256, dtype=np.uint8), data_type).astype(np.float64)
    return np.unique(v[np.isfinite(v)] + 0.0)


def analyse_node(node, index, graph, scope, path, opset, bins):
    """The layer record for one weight-carrying node; raises NotALayer."""
    op = node.op_type
    name = node.name or f"{op}#{index}"
    widx = WEIGHT_INPUT[op]
    weight_left = False
    found = resolve_weight(node.input[widx], scope) if len(node.input) > widx and node.input[widx] else None
    if found is None and op == "MatMul" and node.input and node.input[0]:
        found = resolve_weight(node.input[0], scope)
        weight_left = found is not None
    if found is None:
        raise NotALayer(f"{name}: weight is not a constant")

    stored = found["tensor"]
    perm = found["perm"]
    rank = len(perm)
    q = tensor_to_array(stored)
    if q.size == 0:
        raise NotALayer(f"{name}: empty weight")

    # Output-channel axis in the op's view of the weight.
    if op in CONV_FAMILY:
        op_axis = 0
    elif op == "ConvTranspose":
        op_axis = 1
    elif op == "Gemm":
        op_axis = 0 if int(attr(node, "transB", 0)) == 1 else 1
    else:  # MatMul family
        op_axis = rank - 2 if weight_left else rank - 1
    if rank == 0 or not 0 <= op_axis < rank:
        raise NotALayer(f"{name}: weight of rank {rank} has no output-channel axis")
    channel_axis = perm[op_axis]

    # Dequantization: a DequantizeLinear on the way, or the integer op itself.
    quant = None
    note = None
    dyn_out = None
    if found["dq"] is not None:
        quant = found["dq"]
    elif op in ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"):
        if op in ("QLinearConv", "QLinearMatMul"):
            scale_name = node.input[4] if len(node.input) > 4 else ""
            zp_name = node.input[5] if len(node.input) > 5 else ""
            scale_t = scope.constant(scale_name)
            if scale_t is None:
                raise NotALayer(f"{name}: weight scale is not a constant")
            scale = tensor_to_array(scale_t)
        else:
            zp_name = node.input[3] if len(node.input) > 3 else ""
            channels = q.transpose(perm).shape[op_axis]
            ones = rank - 2 if op in CONV_FAMILY else 0
            traced, dyn_out = dynamic_weight_scale(node, graph, scope, channels, ones)
            if traced is None:
                scale, note = np.ones(1, np.float32), dyn_out
                dyn_out = None
            else:
                scale = traced
        zp = None
        if zp_name:
            zp_t = scope.constant(zp_name)
            if zp_t is None:
                raise NotALayer(f"{name}: weight zero point is not a constant")
            zp = tensor_to_array(zp_t)
        per_channel = scale.size > 1 or (zp is not None and zp.size > 1)
        quant = {"via": op, "scale": scale, "zero_point": zp,
                 "axis": channel_axis if per_channel else None}
    if quant is not None:
        if stored.data_type in FLOAT8 and quant["zero_point"] is not None and np.any(quant["zero_point"] != 0):
            raise NotALayer(f"{name}: float8 zero point is not 0")
        values = dequantize(q, quant["scale"], quant["zero_point"], quant["axis"], quant.get("block", 0))
    else:
        values = q.astype(np.float32)

    # The weight as the op sees it, then grouped by output channel.
    groups = int(attr(node, "group", 1))

    def by_channel(arr):
        view = arr.transpose(perm)
        if op == "ConvTranspose":
            # [I, O/g, k...]: output channel gi*(O/g)+j reads W[gi*(I/g):(gi+1)*(I/g), j, ...]
            if groups < 1 or view.shape[0] % groups:
                raise NotALayer(f"{name}: {view.shape[0]} input channels not divisible by group {groups}")
            i_g, o_g = view.shape[0] // groups, view.shape[1]
            return view.reshape(groups, i_g, o_g, -1).transpose(0, 2, 1, 3).reshape(groups * o_g, -1)
        return np.moveaxis(view, op_axis, 0).reshape(view.shape[op_axis], -1)

    view = values.transpose(perm)
    ch = by_channel(values)
    if ch.shape[1] == 0:
        raise NotALayer(f"{name}: empty weight")
    # The reduction elements of each output channel in the stored tensor's memory order
    # (blocks run in this order): the stored channel axis moved first. A grouped
    # ConvTranspose (never transposed) keeps ch's (I/g, k...) order, which is stored order.
    if op == "ConvTranspose" and groups > 1:
        rows = ch
    else:
        rows = np.moveaxis(values, perm[op_axis], 0).reshape(ch.shape[0], -1)

    if op in CONV_FAMILY:
        depthwise = groups > 1 and rank > 1 and view.shape[1] == 1
    elif op == "ConvTranspose":
        depthwise = groups > 1 and view.shape[0] == groups
    else:
        depthwise = False

    # Bias: an op input, or a lone following Add of a constant with C elements.
    output = dyn_out or (node.output[0] if node.output else "")
    bias = None
    if op in BIAS_INPUT and len(node.input) > BIAS_INPUT[op] and node.input[BIAS_INPUT[op]]:
        bias = node.input[BIAS_INPUT[op]]
    elif output:
        users = consumers(graph, output)
        if len(users) == 1 and users[0].op_type == "Add" and is_default(users[0]) \
                and len(users[0].input) == 2 and users[0].output:
            a, b = users[0].input
            other = b if a == output else a if b == output else None
            if other is not None and other != output:
                t = scope.constant(other)
                # One value per output channel, shaped to broadcast along the output's
                # channel axis: NCHW outputs need [C, 1, 1] (one 1 per spatial axis),
                # x @ W and Gemm outputs [C] (channels last), W @ x outputs [C, 1].
                if op in CONV_FAMILY or op == "ConvTranspose":
                    ones = rank - 2
                elif weight_left:
                    ones = 1
                else:
                    ones = 0
                dims = list(t.dims) if t is not None else []
                shape_ok = len(dims) >= ones + 1 and dims[len(dims) - ones - 1] == ch.shape[0] \
                    and all(d == 1 for i, d in enumerate(dims) if i != len(dims) - ones - 1)
                if t is not None and shape_ok:
                    bias = other
                    output = users[0].output[0]
                elif t is None and dyn_out and op in CONV_FAMILY:
                    # quantize_dynamic's Conv bias: Add(y, Reshape(B, [1, -1, 1, 1]))
                    hit = scope.lookup(other)
                    if hit and hit[0] == "node" and hit[1].op_type == "Reshape" and is_default(hit[1]) \
                            and len(hit[1].input) >= 2:
                        b_t = hit[2].constant(hit[1].input[0])
                        s_t = hit[2].constant(hit[1].input[1])
                        if b_t is not None and s_t is not None:
                            b_v = tensor_to_array(b_t)
                            s_v = tensor_to_array(s_t).ravel().tolist()
                            b_dims = list(b_t.dims)
                            if b_v.size == ch.shape[0] and len(s_v) == rank and rank >= 2 \
                                    and b_dims[-1:] == [ch.shape[0]] and all(d == 1 for d in b_dims[:-1]) \
                                    and all(s_v[i] == 1 for i in range(rank) if i != 1) \
                                    and s_v[1] in (-1, ch.shape[0]):
                                bias = hit[1].input[0]
                                output = users[0].output[0]

    follower, user = classify(graph, scope, output, opset) if output else ("none", None)
    activation = None
    if follower == "batchnorm" and user.output and user.output[0]:
        activation = {"kind": classify(graph, scope, user.output[0], opset)[0]}

    record = {
        "name": name,
        "path": path,
        "op": op,
        "weight": found["name"],
        "shape": [int(d) for d in stored.dims],
        "dtype": dtype_name(stored.data_type),
        "channelAxis": int(channel_axis),
        "groups": groups,
        "depthwise": bool(depthwise),
        "bias": bias,
        "follower": {"kind": follower},
        "activation": activation,
        "quant": None if quant is None else {
            "via": quant["via"],
            "dtype": dtype_name(stored.data_type),
            "axis": quant["axis"],
            "scale": np.asarray(quant["scale"]).astype(np.float32).ravel(),
            "zeroPoint": (np.zeros(1, np.int64) if quant["zero_point"] is None
                          else np.asarray(quant["zero_point"]).ravel()),
        },
        "stored": None,
    }
    if quant is not None and quant.get("block"):
        # Block-wise DequantizeLinear: bits of the stored type; symmetric when every zero
        # point is the centre of the codes (2^(bits-1) unsigned, 0 signed or float8).
        bits = 4 if stored.data_type in (INT4, UINT4) else 8 if stored.data_type in FLOAT8 else 8 * np.dtype(q.dtype).itemsize
        centre = 2.0 ** (bits - 1) if stored.data_type in (UINT4, TensorProto.UINT8, TensorProto.UINT16) else 0.0
        zp = record["quant"]["zeroPoint"]
        record["quant"].update({"granularity": "per-block", "bits": int(bits), "blockSize": quant["block"],
                                "symmetric": bool(np.all(np.asarray(zp, np.float64) == centre))})
    # Input channels, from each op's definition on the op's view of the weight:
    # Conv [O, I/g, k...]: output channel o reads input channels G*(I/g) .. G*(I/g)+I/g-1 of
    # its group G = o // (O/g), so input channel G*(I/g)+j gathers [G, :, j, ...];
    # ConvTranspose [I, O/g, k...]: axis 0; Gemm [K, N] (transB: [N, K]): the K axis;
    # MatMul x @ B [..., K, N]: axis -2; A @ x with A [..., M, K]: axis -1.
    a = np.abs(view.astype(np.float32))
    if op in CONV_FAMILY:
        if groups < 1 or view.shape[0] % groups:
            raise NotALayer(f"{name}: {view.shape[0]} output channels not divisible by group {groups}")
        o_g = view.shape[0] // groups
        in_axis = 1
        in_absmax = a.reshape(groups, o_g, view.shape[1], -1).max(axis=(1, 3)).ravel()
    else:
        if op == "ConvTranspose":
            in_axis = 0
        elif op == "Gemm":
            in_axis = 1 - op_axis
        else:
            in_axis = rank - 1 if weight_left else rank - 2
        in_absmax = np.moveaxis(a, in_axis, 0).reshape(view.shape[in_axis], -1).max(axis=1)
    record["inputChannels"] = input_channel_stats(in_absmax, perm[in_axis])
    if quant is not None and note:
        record["quant"]["note"] = note
    if quant is not None and stored.data_type in (TensorProto.INT8, TensorProto.UINT8, INT4, UINT4) | FLOAT8.keys():
        zp = record["quant"]["zeroPoint"]
        per_axis = np.asarray(quant["scale"]).size > 1 or zp.size > 1
        along = not per_axis or (quant["axis"] == channel_axis and zp.size in (1, ch.shape[0]))
        channel_of = None
        if quant.get("block"):  # blocked DequantizeLinear: zero points shaped like the weight, blocked on `axis`
            gran = "per-block"
            if zp.size > 1:
                zshape = list(stored.dims)
                zshape[quant["axis"]] = -(-zshape[quant["axis"]] // quant["block"])
                if quant["axis"] != channel_axis and not (op == "ConvTranspose" and groups > 1):
                    channel_of = np.indices(zshape)[channel_axis].ravel()
                else:
                    channel_of = -np.ones(zp.size, np.int64)
        else:
            gran = "per-tensor" if not per_axis else "per-channel" if along else "per-axis"
            if not along:
                channel_of = -np.ones(zp.size, np.int64)
        bits = 4 if stored.data_type in (INT4, UINT4) else 8
        signed = stored.data_type in (TensorProto.INT8, INT4) or stored.data_type in FLOAT8
        grid = float8_grid(stored.data_type) if stored.data_type in FLOAT8 else None
        record["stored"] = stored_facts(by_channel(q), bits, signed, zp, gran, channel_of, grid)
    record.update(layer_stats(ch, bins, rows, BLOCK_SIZES))
    return record


def analyse_nbits(node, index, graph, scope, path, opset, bins):
    """MatMulNBits (com.microsoft), read from ONNX Runtime's contrib operator documentation:
    B uint8 [N, ceil(K / block_size), block_size * bits / 8], codes along K, low bits of each
    byte first; scales one per block; zero_points packed uint8 (ceil(n_blocks * bits / 8)
    bytes per column) or one float per block, absent = 2^(bits - 1). W[k, n] = (code - zp) *
    scale. The layer is W^T, [N, K], one output channel per row."""
    name = node.name or f"{node.op_type}#{index}"
    inputs = list(node.input) + [""] * 6
    if inputs[4]:
        raise NotALayer(f"{name}: g_idx is not read")
    K, N = int(attr(node, "K", 0)), int(attr(node, "N", 0))
    bits, block = int(attr(node, "bits", 4)), int(attr(node, "block_size", 0))
    if bits not in (4, 8) or block < 16 or block & (block - 1) or K < 1 or N < 1:
        raise NotALayer(f"{name}: attributes not read")
    b_t = scope.constant(inputs[1])
    s_t = scope.constant(inputs[2])
    if b_t is None or s_t is None:
        raise NotALayer(f"{name}: B or scales not a constant")
    nb = -(-K // block)
    packed = tensor_to_array(b_t).astype(np.uint8).reshape(N, -1)
    if bits == 4:
        codes = np.empty((N, packed.shape[1] * 2), np.uint8)
        codes[:, 0::2] = packed & 0x0F
        codes[:, 1::2] = packed >> 4
    else:
        codes = packed
    codes = codes[:, :K].astype(np.float32)
    scales = tensor_to_array(s_t).astype(np.float32).reshape(N, nb)
    if inputs[3]:
        z_t = scope.constant(inputs[3])
        if z_t is None:
            raise NotALayer(f"{name}: zero points not a constant")
        z = tensor_to_array(z_t)
        if z_t.data_type == TensorProto.UINT8:
            z = z.astype(np.uint8).reshape(N, -1)
            if bits == 4:
                both = np.empty((N, z.shape[1] * 2), np.uint8)
                both[:, 0::2] = z & 0x0F
                both[:, 1::2] = z >> 4
                z = both
            zp = z[:, :nb].astype(np.float64)
        else:
            zp = z.astype(np.float64).reshape(N, nb)
        zp_out = zp.ravel()
    else:
        zp = np.full((N, nb), 2.0 ** (bits - 1))
        zp_out = np.array([2.0 ** (bits - 1)])
    block_of = np.arange(K) // block
    ch = (codes - zp[:, block_of].astype(np.float32)) * scales[:, block_of]
    output = node.output[0] if node.output else ""
    follower, user = classify(graph, scope, output, opset) if output else ("none", None)
    activation = None
    if follower == "batchnorm" and user.output and user.output[0]:
        activation = {"kind": classify(graph, scope, user.output[0], opset)[0]}
    record = {
        "name": name, "path": path, "op": node.op_type, "weight": inputs[1],
        "shape": [N, K], "dtype": dtype_name(b_t.data_type), "channelAxis": 0, "groups": 1,
        "depthwise": False, "bias": inputs[5] or None,
        "follower": {"kind": follower}, "activation": activation,
        "quant": {"via": node.op_type, "dtype": "uint4" if bits == 4 else "uint8", "axis": None,
                  "scale": scales.ravel(), "zeroPoint": zp_out,
                  "bits": bits, "blockSize": block, "symmetric": bool(np.all(zp == 2.0 ** (bits - 1)))},
        "stored": stored_facts(codes, bits, False, zp_out, "per-block",
                               np.arange(zp_out.size) // nb if zp_out.size > 1 else None),
    }
    # W [K, N] = ch^T: input channel k is column k of ch.
    record["inputChannels"] = input_channel_stats(np.abs(ch).max(axis=0), 1)
    record.update(layer_stats(ch, bins, None, BLOCK_SIZES))
    return record


# LSTM, GRU and RNN, from the ONNX operator specifications: inputs X, W, R, B; W is
# [num_directions, G*hidden_size, input_size], R [num_directions, G*hidden_size, hidden_size],
# B [num_directions, 2*G*hidden_size] (Wb then Rb), with the G gates stacked along axis 1
# in the order W[iofc] (LSTM), W[zrh] (GRU), W[i] (RNN); num_directions is 2 for
# direction "bidirectional", else 1. The `layout` attribute concerns X and Y only.
RECURRENT_GATES = {"LSTM": "iofc", "GRU": "zrh", "RNN": "i"}


def analyse_recurrent_part(node, index, graph, scope, path, opset, bins, part):
    """One of the node's two layers, W (input weights) or R (recurrent weights):
    one output channel per row d*G*H + g*H + u of the [D*G*H, columns] matrix."""
    op = node.op_type
    name = f"{node.name or f'{op}#{index}'}/{part}"
    gates = RECURRENT_GATES[op]
    direction = attr(node, "direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction not in ("forward", "reverse", "bidirectional"):
        raise NotALayer(f"{name}: direction {direction}")
    D = 2 if direction == "bidirectional" else 1
    inputs = list(node.input) + [""] * 4
    found = resolve_weight(inputs[1 if part == "W" else 2], scope) if inputs[1 if part == "W" else 2] else None
    if found is None:
        raise NotALayer(f"{name}: weight is not a constant")
    if found["perm"] != list(range(len(found["perm"]))):
        raise NotALayer(f"{name}: transposed")
    stored = found["tensor"]
    dims = [int(d) for d in stored.dims]
    if len(dims) != 3 or dims[0] != D or dims[1] % len(gates):
        raise NotALayer(f"{name}: shape {dims}")
    H = dims[1] // len(gates)
    hidden = int(attr(node, "hidden_size", 0))
    if (hidden and hidden != H) or (part == "R" and dims[2] != H):
        raise NotALayer(f"{name}: shape {dims} with hidden_size {hidden}")
    bias = inputs[3] or None
    if bias is not None:
        b = scope.constant(bias)
        if b is not None and [int(d) for d in b.dims] != [D, 2 * len(gates) * H]:
            raise NotALayer(f"{name}: B of shape {list(b.dims)}")
    q = tensor_to_array(stored)
    quant = found["dq"]
    values = q.astype(np.float32) if quant is None else \
        dequantize(q, quant["scale"], quant["zero_point"], quant["axis"])
    ch = values.reshape(D * dims[1], dims[2])
    follower, user = classify(graph, scope, node.output[0], opset) if node.output and node.output[0] else ("none", None)
    activation = None
    if follower == "batchnorm" and user.output and user.output[0]:
        activation = {"kind": classify(graph, scope, user.output[0], opset)[0]}
    peepholes = inputs[7] if op == "LSTM" and len(node.input) > 7 and node.input[7] else None
    record = {
        "name": name, "path": path, "op": op, "weight": found["name"], "shape": dims,
        "dtype": dtype_name(stored.data_type), "channelAxis": 1, "groups": 1, "depthwise": False,
        "bias": bias, "follower": {"kind": follower}, "activation": activation,
        "quant": None if quant is None else {
            "via": quant["via"], "dtype": dtype_name(stored.data_type), "axis": quant["axis"],
            "scale": np.asarray(quant["scale"]).astype(np.float32).ravel(),
            "zeroPoint": (np.zeros(1, np.int64) if quant["zero_point"] is None
                          else np.asarray(quant["zero_point"]).ravel()),
        },
        "recurrent": {
            "node": node.name or f"{op}#{index}", "part": part, "direction": direction, "directions": D,
            "gates": list(gates), "hiddenSize": H, "biasOffset": 0 if part == "W" else len(gates) * H,
            "peepholes": peepholes,
        },
    }
    # Input channels: the columns of W [D, G*H, I] (the input's features) and of R (the
    # hidden state's), axis 2, max |w| over directions and gate rows.
    record["inputChannels"] = input_channel_stats(np.abs(ch).max(axis=0), 2)
    if quant is not None and (stored.data_type in (TensorProto.INT8, TensorProto.UINT8, INT4, UINT4)
                              or stored.data_type in FLOAT8):
        zp = record["quant"]["zeroPoint"]
        per_axis = np.asarray(quant["scale"]).size > 1 or zp.size > 1
        along = not per_axis or (quant["axis"] == 1 and zp.size in (1, ch.shape[0]))
        gran = "per-tensor" if not per_axis else "per-channel" if along else "per-axis"
        signed = stored.data_type in (TensorProto.INT8, INT4) or stored.data_type in FLOAT8
        record["stored"] = stored_facts(q.reshape(D * dims[1], dims[2]), 4 if stored.data_type in (INT4, UINT4) else 8,
                                        signed, zp, gran, None if along else -np.ones(zp.size, np.int64),
                                        float8_grid(stored.data_type) if stored.data_type in FLOAT8 else None)
    record.update(layer_stats(ch, bins, None, BLOCK_SIZES))
    return record


def analyse_gather_blocks(node, index, graph, scope, path, opset, bins):
    """GatherBlockQuantized (com.microsoft), read from ONNX Runtime's contrib operator
    documentation: data quantized in blocks of block_size along quantize_axis, scales (and
    zero_points, of data's type) shaped like data with that axis divided into blocks; uint8
    data with bits = 4 packs two codes per byte along the last axis, low bits first; absent
    zero points are 0 for int4/uint4 and 2^(bits - 1) for uint8. Read: rank 2, gather_axis 0,
    quantize_axis 1. The layer is the table [V, H], one output channel per row."""
    name = node.name or f"{node.op_type}#{index}"
    inputs = list(node.input) + [""] * 4
    d_t = scope.constant(inputs[0])
    s_t = scope.constant(inputs[2])
    if d_t is None or s_t is None:
        raise NotALayer(f"{name}: data or scales not a constant")
    rank = len(d_t.dims)
    g_axis, q_axis = int(attr(node, "gather_axis", 0)), int(attr(node, "quantize_axis", 1))
    g_axis, q_axis = g_axis % rank if rank else g_axis, q_axis % rank if rank else q_axis
    bits, block = int(attr(node, "bits", 4)), int(attr(node, "block_size", 128))
    if rank != 2 or g_axis != 0 or q_axis != 1 or block < 16 or block & (block - 1):
        raise NotALayer(f"{name}: layout or block_size not read")
    z_t = scope.constant(inputs[3]) if inputs[3] else None
    if d_t.data_type == TensorProto.UINT8:
        raw = tensor_to_array(d_t).astype(np.uint8)
        if bits == 4:
            if inputs[3]:
                raise NotALayer(f"{name}: packed uint8 zero points not read")
            q = int4_values(raw.ravel(), raw.size * 2, False).reshape(raw.shape[0], -1)
            dtype = "uint4"
        elif bits == 8:
            q, dtype = raw, "uint8"
        else:
            raise NotALayer(f"{name}: bits {bits}")
        default_zp = 2.0 ** (bits - 1)
    elif d_t.data_type in (INT4, UINT4):
        q, dtype, default_zp = tensor_to_array(d_t), dtype_name(d_t.data_type), 0.0
        bits = 4
    else:
        raise NotALayer(f"{name}: data type {dtype_name(d_t.data_type)}")
    V, H = q.shape
    nb = -(-H // block)
    scales = tensor_to_array(s_t).astype(np.float32)
    zp = tensor_to_array(z_t).astype(np.float32) if z_t is not None else np.full((V, nb), default_zp, np.float32)
    if scales.shape != (V, nb) or zp.shape != (V, nb):
        raise NotALayer(f"{name}: scales or zero points of the wrong shape")
    block_of = np.arange(H) // block
    ch = (q.astype(np.float32) - zp[:, block_of]) * scales[:, block_of]
    output = node.output[0] if node.output else ""
    follower, user = classify(graph, scope, output, opset) if output else ("none", None)
    centre = 2.0 ** (bits - 1) if dtype.startswith("u") else 0.0
    record = {
        "name": name, "path": path, "op": node.op_type, "weight": inputs[0],
        "shape": [V, H], "dtype": dtype_name(d_t.data_type), "channelAxis": 0, "groups": 1,
        "depthwise": False, "bias": None, "follower": {"kind": follower}, "activation": None,
        "quant": {"via": node.op_type, "dtype": dtype, "axis": 1, "scale": scales.ravel(),
                  "zeroPoint": zp.ravel() if z_t is not None else np.array([default_zp]),
                  "granularity": "per-block", "bits": bits, "blockSize": block,
                  "symmetric": bool(np.all(zp == centre))},
        "stored": stored_facts(q, bits, dtype == "int4", zp.ravel() if z_t is not None else np.array([default_zp]),
                               "per-block", np.arange(zp.size) // nb if z_t is not None else None),
    }
    record.update(layer_stats(ch, bins, None, BLOCK_SIZES))
    return record


def walk(graph, parent_scope, path, opset, bins, layers, skipped):
    """Depth-first: each node, then the sub-graphs in its attributes, in order."""
    scope = Scope(graph, parent_scope)
    for index, node in enumerate(graph.node):
        display = node.name or f"{node.op_type}#{index}"
        if node.op_type in WEIGHT_INPUT and is_default(node):
            try:
                layers.append(analyse_node(node, index, graph, scope, path, opset, bins))
            except NotALayer as e:
                skipped.append(f"{path + '/' if path else ''}{e}")
        elif node.op_type in RECURRENT_GATES and is_default(node):
            for part in ("W", "R"):
                try:
                    layers.append(analyse_recurrent_part(node, index, graph, scope, path, opset, bins, part))
                except NotALayer as e:
                    skipped.append(f"{path + '/' if path else ''}{e}")
        elif node.op_type == "GatherBlockQuantized" and node.domain == "com.microsoft":
            try:
                layers.append(analyse_gather_blocks(node, index, graph, scope, path, opset, bins))
            except NotALayer as e:
                skipped.append(f"{path + '/' if path else ''}{e}")
        elif node.op_type == "MatMulNBits" and node.domain == "com.microsoft":
            try:
                layers.append(analyse_nbits(node, index, graph, scope, path, opset, bins))
            except NotALayer as e:
                skipped.append(f"{path + '/' if path else ''}{e}")
        for a in node.attribute:
            prefix = f"{path + '/' if path else ''}{display}/{a.name}"
            if a.type == AttributeProto.GRAPH:
                walk(a.g, scope, prefix, opset, bins, layers, skipped)
            elif a.type == AttributeProto.GRAPHS:
                for k, g in enumerate(a.graphs):
                    walk(g, scope, f"{prefix}[{k}]", opset, bins, layers, skipped)


# ----------------------------------------------------------------------------
# JSON

def plain(x):
    """numpy values -> JSON-ready Python values; inf and NaN -> None."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def analyse(path, bins=128):
    model = onnx.load(path)  # resolves external data next to the model
    opset = 1
    for o in model.opset_import:
        if o.domain in DEFAULT_DOMAINS:
            opset = o.version
    layers, skipped = [], []
    walk(model.graph, None, "", opset, bins, layers, skipped)
    for s in skipped:
        print(f"skipped: {s}", file=sys.stderr)
    return {
        "schema": "quantlens.analysis/1",
        "model": {
            "producer": model.producer_name,
            "producerVersion": model.producer_version,
            "irVersion": model.ir_version,
            "opsets": [{"domain": o.domain, "version": o.version} for o in model.opset_import],
            "bytes": os.path.getsize(path),
        },
        "layers": layers,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--bins", type=int, default=128)
    ap.add_argument("--block-size", type=int, default=None)
    args = ap.parse_args()
    if args.bins < 1:
        ap.error("--bins must be at least 1")
    if args.block_size is not None:
        if args.block_size < 1:
            ap.error("--block-size must be at least 1")
        if args.block_size not in BLOCK_SIZES:
            BLOCK_SIZES.append(args.block_size)
    doc = plain(analyse(args.model, args.bins))
    json.dump(doc, sys.stdout, allow_nan=False, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
