"""LLM-shaped models for the statistics-throughput micro-benchmark (tools/bench/simd).

Writes, into the folder given (default /tmp/ql-simd), the same random weights in four
forms: MatMul with B stored [K, N] (channel axis last: the statistics' row mode) in
float32, float16 and bfloat16, and Gemm with transB = 1, B stored [N, K] (channel axis
first: run mode) in float32. Per block (Llama-style): q, k, v, o [d, d]; gate, up
[d, ff]; down [ff, d]. A few input rows of each weight are scaled x20 (outliers).

    /usr/bin/python3 tools/bench/simd/make_models.py [OUT_DIR] [--blocks 8 --d 1024 --ff 2816]
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper


def weights(blocks, d, ff, seed):
    rng = np.random.default_rng(seed)
    out = []
    for b in range(blocks):
        for name, k, n in (("q", d, d), ("k", d, d), ("v", d, d), ("o", d, d), ("gate", d, ff), ("up", d, ff), ("down", ff, d)):
            w = rng.standard_normal((k, n), dtype=np.float32) * np.float32(1.0 / np.sqrt(k))
            rows = rng.choice(k, size=4, replace=False)
            w[rows, :] *= np.float32(20.0)
            out.append((f"b{b}.{name}", w))
    return out


def tensor(name, w, kind):
    """w: float32 array; kind: fp32, fp16 or bf16 (float32 bits rounded to nearest even)."""
    if kind == "fp32":
        return helper.make_tensor(name, TensorProto.FLOAT, w.shape, w.astype("<f4").tobytes(), raw=True)
    if kind == "fp16":
        return helper.make_tensor(name, TensorProto.FLOAT16, w.shape, w.astype("<f2").tobytes(), raw=True)
    bits = w.astype("<f4").view("<u4").astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
    return helper.make_tensor(name, TensorProto.BFLOAT16, w.shape, rounded.tobytes(), raw=True)


def model(ws, kind, row):
    elem = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[kind]
    nodes, inits, outputs = [], [], []
    d = ws[0][1].shape[0]
    x = "x"
    for i in range(0, len(ws), 7):
        blk = ws[i : i + 7]
        names = {}
        for name, w in blk:
            short = name.split(".")[1]
            if row:  # Gemm(x, W^T) with W stored [N, K]
                inits.append(tensor(name, np.ascontiguousarray(w.T), kind))
            else:
                inits.append(tensor(name, w, kind))
            names[short] = name

        def lin(inp, short, out):
            if row:
                nodes.append(helper.make_node("Gemm", [inp, names[short]], [out], transB=1, name=out))
            else:
                nodes.append(helper.make_node("MatMul", [inp, names[short]], [out], name=out))

        p = names["q"].split(".")[0]
        for short in ("q", "k", "v"):
            lin(x, short, f"{p}_{short}")
        outputs += [f"{p}_k", f"{p}_v"]
        lin(f"{p}_q", "o", f"{p}_o")
        lin(f"{p}_o", "gate", f"{p}_gate")
        lin(f"{p}_o", "up", f"{p}_up")
        nodes.append(helper.make_node("Mul", [f"{p}_gate", f"{p}_up"], [f"{p}_m"], name=f"{p}_m"))
        lin(f"{p}_m", "down", f"{p}_down")
        nodes.append(helper.make_node("Add", [x, f"{p}_down"], [f"{p}_x"], name=f"{p}_x"))
        x = f"{p}_x"
    outputs.append(x)
    vi = lambda n: helper.make_tensor_value_info(n, elem, [1, None])
    g = helper.make_graph(nodes, "llm", [helper.make_tensor_value_info("x", elem, [1, d])], [vi(o) for o in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="ql-simd-bench")
    m.ir_version = 8
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="/tmp/ql-simd")
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--ff", type=int, default=2816)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    ws = weights(a.blocks, a.d, a.ff, a.seed)
    params = sum(w.size for _, w in ws)
    for kind, row in (("fp32", False), ("fp16", False), ("bf16", False), ("fp32", True)):
        path = os.path.join(a.out, f"llm_{'row' if row else 'col'}_{kind}.onnx")
        onnx.save(model(ws, kind, row), path)
        print(f"{path}: {params} parameters, {os.path.getsize(path) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
