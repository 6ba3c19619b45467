#!/usr/bin/python3
"""Independent reference for QuantLens's compressibility curves (issue 15).

Usage: /usr/bin/python3 tools/reference/compress_ref.py MODEL.onnx [--time]

For every Conv, Gemm and MatMul of the main graph whose weight is a float32
initializer used by that node alone, the matrix each SVD method factors, from the
written definitions (docs/computations.md, "Compressibility"):

  weight SVD (Gemm, MatMul with a 2-D weight, 1x1 Conv with group 1): M[O, I];
  spatial SVD (k x k Conv with group 1): W[O, I, kh, kw] as M[I*kh, O*kw],
    M[i*kh + y, o*kw + x] = W[o, i, y, x].

and its singular values by numpy.linalg.svd (LAPACK gesdd, values only). Prints one
JSON document: {"layers": [{"name", "method", "rows", "cols", "s": [...], "macs"}],
"seconds": time spent in numpy.linalg.svd alone}. With --time the SVDs run three
times and "seconds" is the median (the bench's yardstick). "macs" is the layer's
multiply-accumulates as stored, parameters x output positions (the output's elements
over its channel count), from onnx.shape_inference; null where a shape is not static.

Shares no code with the C++ core. Needs python3-onnx and python3-numpy.
"""

import argparse
import json
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def output_positions(model):
    """Output tensor name -> its static dims, from onnx.shape_inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - a model shape inference cannot handle: no MACs
        return {}
    dims = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") and d.dim_value > 0 for d in t.shape.dim):
            dims[v.name] = [d.dim_value for d in t.shape.dim]
    return dims


def matrices(model):
    g = model.graph
    shapes = output_positions(model)
    inits = {t.name: t for t in g.initializer}
    uses = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    out = []
    for index, n in enumerate(g.node):
        if n.domain not in ("", "ai.onnx") or n.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        name = n.name or f"{n.op_type}#{index}"
        if n.op_type == "MatMul":
            if n.input[1] in inits:
                wname, left = n.input[1], False
            elif n.input[0] in inits:
                wname, left = n.input[0], True
            else:
                continue
        else:
            wname, left = n.input[1], False
        if wname not in inits or uses.get(wname) != 1 or inits[wname].data_type != onnx.TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(inits[wname]).astype(np.float64)
        if n.op_type == "Conv":
            if attr(n, "group", 1) != 1 or w.ndim != 4:
                continue
            O, I, kh, kw = w.shape
            y = shapes.get(n.output[0])
            macs = w.size * (int(np.prod(y)) // y[1]) if y else None
            if kh == 1 and kw == 1:
                out.append((name, "weight-svd", w.reshape(O, I), macs))
            else:
                out.append((name, "spatial-svd", w.transpose(1, 2, 0, 3).reshape(I * kh, O * kw), macs))
        elif n.op_type == "Gemm":
            if w.ndim != 2 or attr(n, "transA", 0):
                continue
            y = shapes.get(n.output[0])
            out.append((name, "weight-svd", w if attr(n, "transB", 0) else w.T, w.size * y[0] if y else None))
        else:
            if w.ndim != 2:
                continue
            y = shapes.get(n.output[0])
            channels = (y[-2] if left else y[-1]) if y else 1
            out.append((name, "weight-svd", w if left else w.T, w.size * (int(np.prod(y)) // channels) if y else None))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--time", action="store_true")
    args = ap.parse_args()
    mats = matrices(onnx.load(args.model))
    runs = []
    for _ in range(3 if args.time else 1):
        t0 = time.perf_counter()
        values = [np.linalg.svd(m, compute_uv=False) for (_, _, m, _) in mats]
        runs.append(time.perf_counter() - t0)
    layers = [
        {
            "name": name,
            "method": method,
            "rows": int(m.shape[0]),
            "cols": int(m.shape[1]),
            "s": [float(x) for x in s],
            "macs": macs,
        }
        for (name, method, m, macs), s in zip(mats, values)
    ]
    json.dump({"layers": layers, "seconds": sorted(runs)[len(runs) // 2]}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
