#!/usr/bin/python3
"""Independent reference for QuantLens's model comparison (compare()).

Usage: /usr/bin/python3 tools/reference/compare_ref.py A.onnx B.onnx PAIRS.json
       /usr/bin/python3 tools/reference/compare_ref.py --match A.onnx B.onnx

PAIRS.json: [[weightA, weightB], ...], the stored weight tensor names (initializer
or Constant output) of each pair, as compare() reports them in pairs[k].a.weight and
pairs[k].b.weight. Prints a JSON list, one entry per pair:

  { "a": {weight, op, axis, shape, quant}, "b": {...}, "channels": count,
    "maxAbsDiff": [...], "rmsDiff": [...], "sqnr": [...],          (per output channel of A)
    "minA": [...], "maxA": [...], "minB": [...], "maxB": [...],
    "tensor": {maxAbsDiff, rmsDiff, sqnr} }   or   { "error": "why" }

with SQNR = 10 log10(sum a^2 / sum (b - a)^2) dB, null for +inf (identical) and
"-inf" for a zero signal with noise.

--match pairs the weight layers of the main graphs (sub-graphs are not read) and prints
{"pairs": [[weightA, weightB, matchedBy], ...] in A's graph order, "unmatchedA": [node
names], "unmatchedB": [...]}, by these rules, each among the layers still unpaired:
 weight             the same stored weight name (i-th user with i-th user);
 name               the same non-empty node name;
 weight-normalized  the same weight name once the quantizers' suffixes are cut (see
                    QUANTIZER_SUFFIX), only when one unpaired layer of each side has it;
 name-normalized    the same for node names;
 position           the k-th unpaired layers of A and B, when their op families
                    (conv, convtranspose, matmul = MatMul/Gemm and their integer forms)
                    and weight element counts agree.
A layer: a Conv / ConvTranspose / Gemm / MatMul / QLinearConv / QLinearMatMul /
ConvInteger / MatMulInteger node whose weight input (MatMul: input 1, else input 0)
comes from a stored tensor through Identity, DequantizeLinear (input 0) and Transpose.

How (written from the ONNX operator definitions, sharing no code with QuantLens):
 - values: onnx.numpy_helper.to_array; a weight read by DequantizeLinear (input 0)
   is dequantized as the operator defines it, y = (x - zero_point) * scale in float32,
   scale / zero point per tensor or along `axis` (default 1); a weight read by
   QLinearConv / QLinearMatMul (input 3) with its w_scale / w_zero_point (inputs 4 and
   5), per-channel along axis 0 (QLinearConv) or the last axis (QLinearMatMul).
   Other weights are converted to float32.
 - output-channel axis, found by following the weight through Identity,
   DequantizeLinear and Transpose (composing perms) to the layer: Conv family 0,
   ConvTranspose 1 (grouped: channel g*(O/g)+c of [g, I/g, O/g, ...]), Gemm 0 with
   transB else 1, MatMul the last axis (axis -2 when the weight is MatMul's input 0).
 - numbers: b - a, squares and sums in float64; min / max of the float32 values.
"""

import json
import math
import re
import sys

import numpy as np
import onnx
from onnx import numpy_helper

LAYER_WEIGHT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1, "QLinearConv": 3, "QLinearMatMul": 3,
                "ConvInteger": 1, "MatMulInteger": 1}


# Suffixes onnxruntime's quantization tools append to tensor and node names
# (onnxruntime/python/tools/quantization: quant_utils TENSOR_NAME_QUANT_SUFFIX "_quantized";
# QOperator nodes name + "_quant"; QDQ "_QuantizeLinear", "_DequantizeLinear" and their
# "_Output" / "_Input" values; "_scale" / "_zero_point" parameters; MatMulNBits "_Q4",
# "_Q8", "_DQ_Q4", "_scales", "_zero_points"; bnb4 "_Bnb4", "_absmax"), cut repeatedly
# while something is left of the name.
QUANTIZER_SUFFIX = re.compile(r"(?:_DequantizeLinear_Output|_QuantizeLinear_Output|_QuantizeLinear_Input"
                              r"|_DequantizeLinear|_QuantizeLinear|_quantized|_quant|_zero_points?|_scales?"
                              r"|_Bnb4|_absmax|(?:_DQ)?_Q[0-9]+)$")

FAMILY = {"Conv": "conv", "QLinearConv": "conv", "ConvInteger": "conv", "ConvTranspose": "convtranspose",
          "Gemm": "matmul", "MatMul": "matmul", "QLinearMatMul": "matmul", "MatMulInteger": "matmul"}


def normalized(name):
    while True:
        m = QUANTIZER_SUFFIX.search(name)
        if not m or m.start() == 0:
            return name
        name = name[:m.start()]


class Model:
    def __init__(self, path):
        self.m = onnx.load(path)
        g = self.m.graph
        self.tensors = {t.name: t for t in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                        self.tensors[n.output[0]] = a.t
        self.consumers = {}
        for n in g.node:
            for k, i in enumerate(n.input):
                self.consumers.setdefault(i, []).append((n, k))

    def stored_source(self, value):
        """The stored tensor a value comes from through Identity / DequantizeLinear / Transpose, or None."""
        producers = {o: n for n in self.m.graph.node for o in n.output}
        for _ in range(16):
            if value in self.tensors:
                return value
            n = producers.get(value)
            if n is None or n.op_type not in ("Identity", "DequantizeLinear", "Transpose") or not n.input:
                return None
            value = n.input[0]
        return None

    def layers(self):
        """[(node name, weight name, family, element count)] in graph order."""
        out = []
        for n in self.m.graph.node:
            if n.op_type not in LAYER_WEIGHT:
                continue
            slots = [LAYER_WEIGHT[n.op_type]] + ([0] if n.op_type == "MatMul" else [])
            for slot in slots:
                src = self.stored_source(n.input[slot]) if len(n.input) > slot else None
                if src is not None:
                    count = int(np.prod(self.tensors[src].dims)) if self.tensors[src].dims else 1
                    out.append((n.name, src, FAMILY[n.op_type], count))
                    break
        return out

    def array(self, name):
        return numpy_helper.to_array(self.tensors[name])

    def attr(self, node, name, default):
        for a in node.attribute:
            if a.name == name:
                return a.i
        return default

    def trace(self, name):
        """(layer node, its input slot, stored->op axis map, dequantization) for a stored weight."""
        rank = len(self.tensors[name].dims)
        stored = list(range(rank))
        deq = None
        value = name
        for _ in range(16):
            uses = self.consumers.get(value, [])
            if not uses:
                return None
            node, slot = uses[0]
            op = node.op_type
            if op in LAYER_WEIGHT and (slot == LAYER_WEIGHT[op] or (op == "MatMul" and slot == 0)):
                if op in ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"):
                    scale = node.input[4] if op.startswith("QLinear") else ""
                    zp_slot = 5 if op.startswith("QLinear") else 3
                    zp = node.input[zp_slot] if len(node.input) > zp_slot else ""
                    deq = (op, scale, zp, None)
                return node, slot, stored, deq
            if op == "DequantizeLinear" and slot == 0:
                axis = self.attr(node, "axis", 1)
                if axis < 0:
                    axis += rank
                deq = ("DequantizeLinear", node.input[1], node.input[2] if len(node.input) > 2 else "", stored[axis])
            elif op == "Transpose":
                perm = None
                for a in node.attribute:
                    if a.name == "perm":
                        perm = list(a.ints)
                if perm is None:
                    perm = list(range(rank))[::-1]
                stored = [stored[p] for p in perm]
            elif op != "Identity":
                return None
            value = node.output[0]
        return None

    def weight(self, name):
        """float32 values, layout (outer, rows, channels, inner), description."""
        if name not in self.tensors:
            raise ValueError("no tensor " + name)
        t = self.trace(name)
        if t is None:
            raise ValueError("cannot trace " + name + " to a layer")
        node, slot, stored, deq = t
        q = self.array(name)
        rank = q.ndim
        op = node.op_type
        if op in ("Conv", "QLinearConv", "ConvInteger"):
            op_axis = 0
        elif op == "ConvTranspose":
            op_axis = 1
        elif op == "Gemm":
            op_axis = 0 if self.attr(node, "transB", 0) else 1
        else:
            op_axis = rank - 2 if slot == 0 else rank - 1
        axis = stored[op_axis]
        quant = None
        if deq is None:
            values = q.astype(np.float32)
        else:
            via, scale_name, zp_name, qaxis = deq
            scale = self.array(scale_name).astype(np.float32) if scale_name else np.ones(1, np.float32)
            zp = self.array(zp_name).astype(np.float32) if zp_name else np.zeros(1, np.float32)
            if via != "DequantizeLinear":  # per-channel parameters of the integer ops lie on the output axis
                qaxis = axis if max(scale.size, zp.size) > 1 else None
            shape = [1] * rank
            if qaxis is not None and max(scale.size, zp.size) > 1:
                shape[qaxis] = -1
            s = scale.reshape(shape) if scale.size > 1 else scale.reshape(())
            z = zp.reshape(shape) if zp.size > 1 else zp.reshape(())
            values = ((q.astype(np.float32) - z) * s).astype(np.float32)
            if max(scale.size, zp.size) == 1:
                qaxis = None
            quant = {"via": via, "axis": qaxis, "scale": scale.reshape(-1).tolist(), "zeroPoint": zp.reshape(-1).tolist()}
        dims = list(q.shape)
        group = self.attr(node, "group", 1)
        if op == "ConvTranspose" and group > 1:
            layout = (group, dims[0] // group, dims[1], int(np.prod(dims[2:])))
        else:
            layout = (1, int(np.prod(dims[:axis])), dims[axis], int(np.prod(dims[axis + 1:])))
        return values, layout, {"weight": name, "op": op, "axis": axis, "shape": dims, "quant": quant}


def db(signal, noise):
    if noise == 0:
        return None  # +inf
    if signal == 0:
        return "-inf"  # not produced by the tests
    return 10.0 * math.log10(signal / noise)


def compare(a_values, b_values, layout):
    outer, rows, channels, inner = layout
    n = outer * rows * channels * inner
    a = a_values.reshape(outer, rows, channels, inner).transpose(0, 2, 1, 3).reshape(outer * channels, rows * inner)
    b = b_values.reshape(outer, rows, channels, inner).transpose(0, 2, 1, 3).reshape(outer * channels, rows * inner)
    d = b.astype(np.float64) - a.astype(np.float64)
    sig = (a.astype(np.float64) ** 2).sum(axis=1)
    noi = (d ** 2).sum(axis=1)
    per = rows * inner
    out = {
        "channels": outer * channels,
        "maxAbsDiff": np.abs(d).max(axis=1).tolist() if per else [0.0] * (outer * channels),
        "rmsDiff": np.sqrt(noi / per).tolist() if per else [0.0] * (outer * channels),
        "sqnr": [db(s, e) for s, e in zip(sig.tolist(), noi.tolist())],
        "minA": a.min(axis=1).astype(float).tolist() if per else None,
        "maxA": a.max(axis=1).astype(float).tolist() if per else None,
        "minB": b.min(axis=1).astype(float).tolist() if per else None,
        "maxB": b.max(axis=1).astype(float).tolist() if per else None,
        "tensor": {
            "maxAbsDiff": float(np.abs(d).max()) if n else 0.0,
            "rmsDiff": math.sqrt(float(noi.sum()) / n) if n else 0.0,
            "sqnr": db(float(sig.sum()), float(noi.sum())),
        },
    }
    return out


def match(la, lb):
    pa, pb = [None] * len(la), [None] * len(lb)
    by = {}

    def rule(label, key, unique):
        keys_b = {}
        for j, layer in enumerate(lb):
            if pb[j] is None and key(layer):
                keys_b.setdefault(key(layer), []).append(j)
        keys_a = {}
        for i, layer in enumerate(la):
            if pa[i] is None and key(layer):
                keys_a.setdefault(key(layer), []).append(i)
        for k, users_a in keys_a.items():
            users_b = keys_b.get(k, [])
            if unique and (len(users_a) != 1 or len(users_b) != 1):
                continue
            for i, j in zip(users_a, users_b):
                pa[i], pb[j], by[i] = j, i, label

    rule("weight", lambda layer: layer[1], False)
    rule("name", lambda layer: layer[0], False)
    rule("weight-normalized", lambda layer: normalized(layer[1]), True)
    rule("name-normalized", lambda layer: normalized(layer[0]) if layer[0] else "", True)
    rest_a = [i for i in range(len(la)) if pa[i] is None]
    rest_b = [j for j in range(len(lb)) if pb[j] is None]
    for i, j in zip(rest_a, rest_b):
        if la[i][2] == lb[j][2] and la[i][3] == lb[j][3]:
            pa[i], pb[j], by[i] = j, i, "position"
    return {
        "pairs": [[la[i][1], lb[pa[i]][1], by[i]] for i in range(len(la)) if pa[i] is not None],
        "unmatchedA": [la[i][0] for i in range(len(la)) if pa[i] is None],
        "unmatchedB": [lb[j][0] for j in range(len(lb)) if pb[j] is None],
    }


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--match":
        json.dump(match(Model(sys.argv[2]).layers(), Model(sys.argv[3]).layers()), sys.stdout)
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    ma, mb = Model(sys.argv[1]), Model(sys.argv[2])
    with open(sys.argv[3]) as f:
        pairs = json.load(f)
    out = []
    for wa, wb in pairs:
        try:
            va, layout, da = ma.weight(wa)
            vb, _, db_ = mb.weight(wb)
            if va.size != vb.size:
                raise ValueError("sizes differ")
            r = compare(va.reshape(-1), vb.reshape(-1), layout)
            r["a"], r["b"] = da, db_
            out.append(r)
        except (ValueError, KeyError) as e:
            out.append({"error": str(e)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
