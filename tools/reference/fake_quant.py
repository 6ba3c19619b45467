#!/usr/bin/python3
"""Fake-quantize every Conv/ConvTranspose/Gemm/MatMul float weight initializer of an ONNX model.

Usage: /usr/bin/python3 tools/reference/fake_quant.py IN.onnx OUT.onnx --bits 8 [--per-channel]

Symmetric: qmax = 2^(bits-1) - 1, s = absMax / qmax (float32, per tensor or per output
channel), w' = round_half_even(w / s) * s in float32; s == 0 gives zeros. Output-channel
axis: Conv W[O, I/g, k...] 0, ConvTranspose W[I, O/g, k...] 1, Gemm B 1 (transB=0) or
0 (transB=1), MatMul right-hand weight [.., K, N] last axis, left-hand [.., M, K] axis -2.
Biases and everything else stay float. A weight shared by several layers is quantized once.
"""

import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def out_axis(node, which):
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        t = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "transB"), 0)
        return 0 if t else 1
    return -1 if which == 1 else -2  # MatMul


def fake_quant(w, bits, axis):
    qmax = np.float32(2 ** (bits - 1) - 1)
    w = w.astype(np.float32)
    if axis is None or w.ndim < 2:
        amax = np.abs(w).max() if w.size else np.float32(0)
        s = np.asarray(np.float32(amax) / qmax, dtype=np.float32)
    else:
        axis = axis % w.ndim
        red = tuple(i for i in range(w.ndim) if i != axis)
        s = (np.abs(w).max(axis=red, keepdims=True).astype(np.float32) / qmax).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (np.round(w / s).astype(np.float32) * s).astype(np.float32)
    return np.where(s == 0, np.float32(0), q).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--per-channel", action="store_true")
    args = ap.parse_args()
    model = onnx.load(args.input)
    inits = {t.name: t for t in model.graph.initializer}
    done = set()
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        which = 1
        if node.op_type == "MatMul" and node.input[1] not in inits:
            which = 0
        name = node.input[which]
        t = inits.get(name)
        if t is None or t.data_type != TensorProto.FLOAT or name in done:
            continue
        w = numpy_helper.to_array(t)
        q = fake_quant(w, args.bits, out_axis(node, which) if args.per_channel else None)
        t.CopyFrom(numpy_helper.from_array(q, name))
        done.add(name)
    onnx.save(model, args.output)
    print(f"fake_quant: {len(done)} weights, int{args.bits} {'per-channel' if args.per_channel else 'per-tensor'}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
