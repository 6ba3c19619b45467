#!/usr/bin/python3
"""Independent reference for channel pruning and static shapes (QuantLens, issue 15).

Usage:
  /usr/bin/python3 tools/reference/prune_ref.py MODEL.onnx
      prints JSON: for every Conv, Gemm and MatMul node of the main graph whose weight is
      an initializer (float32), the L2 norm of each input channel of the weight and the
      weight SQNR of keeping the k largest-norm channels, k = 1..C
      (10*log10(|W|^2 / sum of the dropped channels' |.|^2), null for k = C); and the
      output shape of every Conv that onnx.shape_inference infers with every dim a number.
  /usr/bin/python3 tools/reference/prune_ref.py MODEL.onnx --zero LAYER CHANNEL -o OUT.onnx
      writes a copy of the model with the weights of input channel CHANNEL of LAYER set
      to zero: what the layer computes once that channel is removed, for onnxruntime.

Written from the ONNX operator definitions only (Conv W [O, I/group, k...]: input
channels on axis 1; Gemm B [K, N], or [N, K] with transB; MatMul B [..., K, N]: axis -2);
it shares no code with the C++ core. Needs python3-onnx and python3-numpy.
"""

import argparse
import json
import math
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference


def layer_name(node, index):
    return node.name if node.name else "%s#%d" % (node.op_type, index)


def weight_layers(graph):
    """(name, node, initializer, input-channel axis) for each Conv/Gemm/MatMul with a stored weight."""
    inits = {t.name: t for t in graph.initializer}
    out = []
    for i, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        if len(node.input) < 2 or node.input[1] not in inits:
            continue
        t = inits[node.input[1]]
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        rank = len(t.dims)
        if node.op_type == "Conv":
            axis = 1
        elif node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axis = 1 if trans_b else 0
        else:
            if rank < 2:
                continue
            axis = rank - 2
        out.append((layer_name(node, i), node, t, axis))
    return out


def channel_norms(w, axis):
    moved = np.moveaxis(w.astype(np.float64), axis, 0).reshape(w.shape[axis], -1)
    return np.sqrt((moved * moved).sum(axis=1))


def curve(norms):
    energy = norms * norms
    total = energy.sum()
    order = np.argsort(energy, kind="stable")  # smallest first, ties by index
    sqnr = []
    C = len(norms)
    for k in range(1, C + 1):
        dropped = energy[order[: C - k]].sum()
        sqnr.append(None if dropped == 0 else 10 * math.log10(total / dropped))
    return sqnr


def conv_shapes(model):
    inferred = shape_inference.infer_shapes(model)
    known = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = []
        for d in tt.shape.dim:
            if not d.HasField("dim_value"):
                dims = None
                break
            dims.append(d.dim_value)
        if dims is not None:
            known[vi.name] = dims
    out = {}
    for node in model.graph.node:
        if node.op_type == "Conv" and node.output and node.output[0] in known:
            out[node.output[0]] = known[node.output[0]]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--zero", nargs=2, metavar=("LAYER", "CHANNEL"))
    ap.add_argument("-o", dest="out")
    args = ap.parse_args()
    model = onnx.load(args.model)
    layers = weight_layers(model.graph)
    if args.zero:
        name, channel = args.zero[0], int(args.zero[1])
        match = [l for l in layers if l[0] == name]
        if not match or not args.out:
            sys.exit("no float32 Conv/Gemm/MatMul layer named %s (or no -o)" % name)
        _, _, t, axis = match[0]
        w = numpy_helper.to_array(t).copy()
        index = [slice(None)] * w.ndim
        index[axis] = channel
        w[tuple(index)] = 0
        t.CopyFrom(numpy_helper.from_array(w, t.name))
        onnx.save(model, args.out)
        return
    doc = {"layers": [], "convShapes": conv_shapes(model)}
    for name, node, t, axis in layers:
        w = numpy_helper.to_array(t)
        norms = channel_norms(w, axis)
        doc["layers"].append({"name": name, "op": node.op_type, "weight": t.name, "axis": axis,
                              "norms": norms.tolist(), "sqnr": curve(norms)})
    json.dump(doc, sys.stdout)


if __name__ == "__main__":
    main()
