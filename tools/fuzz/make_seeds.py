#!/usr/bin/python3
"""Writes the seed corpus of the libFuzzer harnesses (tests/fuzz/).

Usage: /usr/bin/python3 tools/fuzz/make_seeds.py [OUTDIR]     (default build/fuzz/seeds)

OUTDIR/models/  one file per model:
  - the small generated models (models/generated, written by tools/make_test_models.py,
    which is run first when the folder is missing), as they are;
  - SHRUNKEN copies of the real models in ../shared/models/*/*.onnx (read-only, may be
    absent) and models/fetched/*.onnx, and of generated models over 64 KB: the graph,
    nodes, attributes and names are kept, every initializer (and Constant value) is cut
    to at most 4 along each axis (the array is sliced), and a depthwise Conv's `group`
    follows its cut weight. Seeds stay a few KB while keeping real exporters' structure.
OUTDIR/pairs/   inputs of fuzz_compare's two-model form: b"QLC2" + uint32 little-endian
    len(A) + A + B, for pairs of seeds (a model against its equalized-by-hand copy, two
    different models, a model against its quantized form).

Real models are never copied into the repository: OUTDIR is under build/.
Deterministic for the same onnx/numpy versions and inputs.
"""

import glob
import hashlib
import os
import struct
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAX_AXIS = 4
SMALL = 64 << 10  # generated models up to this size are seeds as they are


def shrink_tensor(t):
    """A copy of TensorProto t cut to MAX_AXIS per axis; None when it cannot be read."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None  # data not in the file: keep the reference as it is
    try:
        a = numpy_helper.to_array(t)
    except Exception:
        return None
    if a.ndim == 0 or all(d <= MAX_AXIS for d in a.shape):
        return None
    cut = np.ascontiguousarray(a[tuple(slice(0, MAX_AXIS) for _ in a.shape)])
    try:
        n = numpy_helper.from_array(cut, t.name)
    except Exception:
        return None
    n.doc_string = t.doc_string
    return n


def shrink_graph(g, stats):
    cut_dims = {}
    for i, t in enumerate(g.initializer):
        n = shrink_tensor(t)
        if n is not None:
            cut_dims[t.name] = list(n.dims)
            g.initializer[i].CopyFrom(n)
            stats["tensors"] += 1
    for node in g.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                n = shrink_tensor(attr.t)
                if n is not None:
                    if node.op_type == "Constant":
                        for out in node.output:
                            cut_dims[out] = list(n.dims)
                    attr.t.CopyFrom(n)
                    stats["tensors"] += 1
            elif attr.type == onnx.AttributeProto.GRAPH:
                shrink_graph(attr.g, stats)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sg in attr.graphs:
                    shrink_graph(sg, stats)
    # A depthwise (or grouped) Conv whose weight lost output channels: group follows.
    for node in g.node:
        if node.op_type not in ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger") or len(node.input) < 2:
            continue
        w = node.input[3] if node.op_type == "QLinearConv" and len(node.input) > 3 else node.input[1]
        if w not in cut_dims:
            continue
        for attr in node.attribute:
            if attr.name == "group" and attr.i > 1:
                attr.i = max(1, min(attr.i, cut_dims[w][0]))
    # Shapes of graph inputs / outputs / value_info are kept: the structure is the point.


def shrink_model(path):
    m = onnx.load(path, load_external_data=False)
    stats = {"tensors": 0}
    shrink_graph(m.graph, stats)
    for f in m.functions:
        for node in f.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    n = shrink_tensor(attr.t)
                    if n is not None:
                        attr.t.CopyFrom(n)
    return m.SerializeToString()


def name_for(path, prefix):
    base = os.path.splitext(os.path.basename(path))[0]
    tag = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:6]
    return f"{prefix}-{base[:60]}-{tag}.onnx"


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "fuzz", "seeds"))
    models_out = os.path.join(out, "models")
    pairs_out = os.path.join(out, "pairs")
    os.makedirs(models_out, exist_ok=True)
    os.makedirs(pairs_out, exist_ok=True)

    generated = os.path.join(ROOT, "models", "generated")
    if not glob.glob(os.path.join(generated, "*.onnx")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_test_models.py"), generated],
                       check=True, stdout=subprocess.DEVNULL)

    seeds = {}  # file name -> bytes
    for p in sorted(glob.glob(os.path.join(generated, "*.onnx"))):
        if os.path.getsize(p) <= SMALL:
            with open(p, "rb") as f:
                seeds[name_for(p, "gen")] = f.read()
        else:
            seeds[name_for(p, "gen-shrunk")] = shrink_model(p)

    shared = os.path.normpath(os.path.join(ROOT, "..", "shared", "models"))
    real = sorted(glob.glob(os.path.join(shared, "*", "*.onnx"))) + sorted(glob.glob(os.path.join(ROOT, "models", "fetched", "*.onnx")))
    if not os.path.isdir(shared):
        print(f"make_seeds: {shared} is absent; shared real models skipped")
    for p in real:
        try:
            seeds[name_for(p, "real")] = shrink_model(p)
        except Exception as e:  # a model onnx cannot load: skip it, say so
            print(f"make_seeds: skipped {p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")

    for name, data in seeds.items():
        with open(os.path.join(models_out, name), "wb") as f:
            f.write(data)

    # Pairs for fuzz_compare: each model against the next one (different models), and
    # against itself with its float initializers scaled per output channel.
    names = sorted(seeds)
    pairs = {}
    for i, n in enumerate(names):
        a = seeds[n]
        pairs[f"next-{i:03d}"] = (a, seeds[names[(i + 1) % len(names)]])
        try:
            m = onnx.load_from_string(a)
            for t in list(m.graph.initializer):
                if t.data_type == onnx.TensorProto.FLOAT and t.data_location != onnx.TensorProto.EXTERNAL and len(t.dims) >= 1:
                    arr = numpy_helper.to_array(t).copy()
                    if arr.size:
                        scale = np.linspace(0.5, 2.0, arr.shape[0], dtype=np.float32).reshape((-1,) + (1,) * (arr.ndim - 1))
                        t.CopyFrom(numpy_helper.from_array((arr * scale).astype(np.float32), t.name))
            pairs[f"scaled-{i:03d}"] = (a, m.SerializeToString())
        except Exception:
            pass
    for name, (a, b) in pairs.items():
        with open(os.path.join(pairs_out, name), "wb") as f:
            f.write(b"QLC2" + struct.pack("<I", len(a)) + a + b)

    total = sum(len(d) for d in seeds.values())
    print(f"make_seeds: {len(seeds)} models ({total // 1024} KB, largest {max(len(d) for d in seeds.values()) // 1024} KB) "
          f"and {len(pairs)} pairs in {out}")


if __name__ == "__main__":
    main()
