#!/usr/bin/python3
"""Writes an LLM-shaped ONNX model for the benchmark: Llama-style blocks of MatMul weights.

Usage: /usr/bin/python3 tools/bench/make_llm.py OUT.onnx [--preset NAME] [options]

Each block is one decoder layer without norms or head split:
    q, k, v = x @ Wq, x @ Wk, x @ Wv        (Wq, Wk, Wv, Wo: [d, d])
    x = x + softmax(q @ k^T) @ v @ Wo
    x = x + (silu(x @ Wgate) * (x @ Wup)) @ Wdown   (Wgate, Wup: [d, ff]; Wdown: [ff, d])
and, with --vocab V > 0, an embedding table [V, d] read by Gather at the input and an lm_head
MatMul [d, V] at the output. Every weight is a constant MatMul B of shape [K, N] (input
channels first, output channels last, as exporters write them).

Weights are seeded normal values with std 1/sqrt(K), clipped at 3 std (so that nearly every
row's absMax is the clip bound and no row is an outlier by chance: unclipped, about 1 in 50
rows of random normals passes the Tukey rule on its own). A few input rows of each weight (the
same hidden dimensions for every weight that reads the residual stream, as in real LLMs,
and others for Wo and Wdown) are scaled up by --outlier-scale: the planted outliers are
listed in the manifest (OUT.onnx.json: per weight, its shape, dtype, file, offset and
`outlierRows`).

The weights go to external data files beside the model, written tensor by tensor and
row block by row block (a few tens of MB in memory at a time, whatever the model's size):
--files N splits them over N files (OUT.onnx.data, OUT.onnx.data.1, ...), keeping each
tensor whole in one file. The model file holds only the graph.

With --inline the weights go into the model file itself as raw_data, streamed the same way:
the protobuf framing is written by hand (python's protobuf refuses messages over 2 GB), so
the file can exceed 2 GB or 4 GB, as some exporters write them. The manifest's `offset` is
then the payload's offset in the model file.

Presets (options given after --preset override it):
    llm-tiny     1 block, d=64, ff=176, vocab 100, fp16: 9 layers, 64 k parameters, 130 kB (browser tests)
    llm-small    2 blocks, d=512, ff=1376, vocab 2000, fp16: 16 layers, 8.4 M parameters, 17 MB (tests, quick runs)
    llm-8x4096   8 blocks, d=4096, ff=11008, fp16, one external data file: 56 MatMul layers,
                 1.62 B parameters, 3.24 GB (the case of issue 13)
    llm-24x4096  24 blocks of the same, fp16, 4 external data files: 168 MatMul layers,
                 4.86 B parameters, 9.7 GB (run on demand only)
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

# The protobuf wire encoder of the test models (one copy of it).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from make_test_models import tag, varint  # noqa: E402

PRESETS = {
    "llm-tiny": dict(blocks=1, d=64, ff=176, vocab=100, dtype="fp16", files=1),
    "llm-small": dict(blocks=2, d=512, ff=1376, vocab=2000, dtype="fp16", files=1),
    "llm-8x4096": dict(blocks=8, d=4096, ff=11008, vocab=0, dtype="fp16", files=1),
    "llm-24x4096": dict(blocks=24, d=4096, ff=11008, vocab=0, dtype="fp16", files=4),
}
DTYPES = {
    "fp32": (TensorProto.FLOAT, 4),
    "fp16": (TensorProto.FLOAT16, 2),
    "bf16": (TensorProto.BFLOAT16, 2),
}
CHUNK = 1 << 23  # elements generated at a time (32 MB of float32)
ALIGN = 64  # byte alignment of each tensor in its data file
CLIP = np.float32(3.0)  # normal values clipped at 3 std: no row is an outlier by chance


def encode(values, dtype):
    """float32 values -> little-endian bytes of the model's element type."""
    if dtype == "fp32":
        return values.astype("<f4").tobytes()
    if dtype == "fp16":
        return values.astype("<f2").tobytes()
    # bfloat16: the upper 16 bits of the float32 pattern, rounded to nearest even
    bits = values.astype("<f4").view("<u4")
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype("<u2").tobytes()


def weight_specs(o):
    """(name, K, N, input kind) of every weight, in the order they are written."""
    specs = []
    if o.vocab:
        specs.append(("embed_tokens", o.vocab, o.d, "embed"))
    for b in range(o.blocks):
        p = f"layers.{b}."
        specs += [(p + "q_proj", o.d, o.d, "hidden"), (p + "k_proj", o.d, o.d, "hidden"),
                  (p + "v_proj", o.d, o.d, "hidden"), (p + "o_proj", o.d, o.d, "attn"),
                  (p + "gate_proj", o.d, o.ff, "hidden"), (p + "up_proj", o.d, o.ff, "hidden"),
                  (p + "down_proj", o.ff, o.d, "mlp")]
    if o.vocab:
        specs.append(("lm_head", o.d, o.vocab, "hidden"))
    return specs


def outlier_rows(rng, K, n):
    return sorted(int(i) for i in rng.choice(K, size=min(n, K), replace=False))


def write_weight(f, name, K, N, rows, o, seed):
    """Streams one [K, N] weight into f, row block by row block; returns its byte length."""
    rng = np.random.default_rng(seed)
    std = np.float32(1.0 / np.sqrt(K))
    scale = np.ones(K, np.float32)
    scale[rows] = np.float32(o.outlier_scale)
    step = max(1, CHUNK // N)
    length = 0
    for r in range(0, K, step):
        n = min(step, K - r)
        block = rng.standard_normal((n, N), dtype=np.float32)
        np.clip(block, -CLIP, CLIP, out=block)
        block *= (std * scale[r:r + n])[:, None]
        data = encode(block, o.dtype)
        f.write(data)
        length += len(data)
    return length


def field_len(number, length):
    """The tag and length prefix of a length-delimited field."""
    return tag(number, 2) + varint(length)


GRAPH_INITIALIZER, MODEL_GRAPH, TENSOR_RAW_DATA = 5, 7, 9


def write_inline(out, model, specs, o):
    """Writes `model` (its graph without initializers) with every weight inline as raw_data,
    each payload streamed; returns the manifest entries (offset: the payload's offset in the file)."""
    elem, esize = DTYPES[o.dtype]
    graph = model.graph
    graph_bytes = graph.SerializeToString()
    model.ClearField("graph")
    model_bytes = model.SerializeToString()
    heads = []  # per weight: the initializer's framing up to its payload
    for name, K, N, _ in specs:
        t = TensorProto(name=name + ".weight", data_type=elem, dims=[K, N])
        head = t.SerializeToString()
        length = K * N * esize
        body = len(head) + len(field_len(TENSOR_RAW_DATA, length)) + length
        heads.append((head, length, body))
    inits_len = sum(len(field_len(GRAPH_INITIALIZER, body)) + body for _, _, body in heads)
    graph_len = len(graph_bytes) + inits_len
    manifest = []
    with open(out, "wb") as f:
        f.write(model_bytes)
        f.write(field_len(MODEL_GRAPH, graph_len))
        f.write(graph_bytes)
        for i, ((name, K, N, kind), (head, length, body)) in enumerate(zip(specs, heads)):
            f.write(field_len(GRAPH_INITIALIZER, body))
            f.write(head)
            f.write(field_len(TENSOR_RAW_DATA, length))
            offset = f.tell()
            rows = o.rows[i]
            assert write_weight(f, name, K, N, rows, o, [o.seed, i]) == length
            manifest.append({"weight": name + ".weight", "shape": [K, N], "dtype": o.dtype, "file": os.path.basename(out),
                             "offset": offset, "length": length, "outlierRows": rows})
            if o.verbose:
                print(f"  {name}.weight [{K}, {N}] inline @ {offset}", file=sys.stderr)
    return manifest


def build(out, o):
    elem, esize = DTYPES[o.dtype]
    base = os.path.basename(out)
    folder = os.path.dirname(os.path.abspath(out))
    names = [f"{base}.data"] + [f"{base}.data.{i}" for i in range(1, o.files)]
    specs = weight_specs(o)
    rng = np.random.default_rng(o.seed)
    # Outlier input dimensions: shared by every weight reading the residual stream (hidden),
    # and separate sets for the attention output and the MLP's inner width.
    shared = {"hidden": outlier_rows(rng, o.d, o.outliers), "embed": []}
    total = sum(K * N for _, K, N, _ in specs) * esize
    per_file = total / o.files
    # Every weight's outlier rows, drawn in weight order (the same whether written inline or not).
    o.rows = [shared[kind] if kind in shared else outlier_rows(rng, K, o.outliers) for _, K, _, kind in specs]
    inits, manifest = [], []
    handles = [] if o.inline else [open(os.path.join(folder, n), "wb") for n in names]
    try:
        written = 0
        for i, (name, K, N, kind) in enumerate(specs):
            if o.inline:
                break
            fi = min(o.files - 1, int(written // per_file)) if o.files > 1 else 0
            f = handles[fi]
            offset = f.tell()
            pad = -offset % ALIGN
            if pad:
                f.write(b"\0" * pad)
                offset += pad
            rows = o.rows[i]
            length = write_weight(f, name, K, N, rows, o, [o.seed, i])
            written += length
            t = TensorProto(name=name + ".weight", data_type=elem, dims=[K, N])
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", names[fi]), ("offset", str(offset)), ("length", str(length))):
                e = t.external_data.add()
                e.key, e.value = key, value
            inits.append(t)
            manifest.append({"weight": t.name, "shape": [K, N], "dtype": o.dtype, "file": names[fi],
                             "offset": offset, "length": length, "outlierRows": rows})
            if o.verbose:
                print(f"  {t.name} [{K}, {N}] -> {names[fi]} @ {offset}", file=sys.stderr)
    finally:
        for f in handles:
            f.close()

    nodes = []
    x = "x"
    inputs = []
    if o.vocab:
        inputs.append(helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]))
        nodes.append(helper.make_node("Gather", ["embed_tokens.weight", "input_ids"], [x], name="embed_tokens"))
    else:
        inputs.append(helper.make_tensor_value_info(x, elem, ["batch", "seq", o.d]))
    for b in range(o.blocks):
        p = f"layers.{b}."

        def mm(a, w, out, p=p):
            nodes.append(helper.make_node("MatMul", [a, p + w + ".weight"], [p + out], name=p + w))
            return p + out

        q, k, v = mm(x, "q_proj", "q"), mm(x, "k_proj", "k"), mm(x, "v_proj", "v")
        nodes += [helper.make_node("Transpose", [k], [p + "kT"], perm=[0, 2, 1], name=p + "kT"),
                  helper.make_node("MatMul", [q, p + "kT"], [p + "scores"], name=p + "scores"),
                  helper.make_node("Softmax", [p + "scores"], [p + "probs"], axis=-1, name=p + "softmax"),
                  helper.make_node("MatMul", [p + "probs", v], [p + "attn"], name=p + "attn")]
        o_out = mm(p + "attn", "o_proj", "o")
        nodes.append(helper.make_node("Add", [x, o_out], [p + "h"], name=p + "residual1"))
        h = p + "h"
        g, u = mm(h, "gate_proj", "gate"), mm(h, "up_proj", "up")
        nodes += [helper.make_node("Sigmoid", [g], [p + "sig"], name=p + "sigmoid"),
                  helper.make_node("Mul", [g, p + "sig"], [p + "silu"], name=p + "silu"),
                  helper.make_node("Mul", [p + "silu", u], [p + "mlp"], name=p + "mlp")]
        d_out = mm(p + "mlp", "down_proj", "down")
        nodes.append(helper.make_node("Add", [h, d_out], [p + "out"], name=p + "residual2"))
        x = p + "out"
    if o.vocab:
        nodes.append(helper.make_node("MatMul", [x, "lm_head.weight"], ["logits"], name="lm_head"))
        outputs = [helper.make_tensor_value_info("logits", elem, ["batch", "seq", o.vocab])]
    else:
        nodes.append(helper.make_node("Identity", [x], ["hidden"], name="output"))
        outputs = [helper.make_tensor_value_info("hidden", elem, ["batch", "seq", o.d])]
    graph = helper.make_graph(nodes, "llm", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, producer_name="quantlens-bench-make_llm",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if o.inline:
        names = [base]
        manifest = write_inline(out, model, specs, o)
    else:
        # Serialised as it is: onnx.save would look for raw_data to move out.
        with open(out, "wb") as f:
            f.write(model.SerializeToString())
    params = sum(K * N for _, K, N, _ in specs)
    options = {k: v for k, v in vars(o).items() if k != "rows"}
    with open(out + ".json", "w") as f:
        json.dump({"options": options, "parameters": params, "weightBytes": total, "files": names,
                   "weights": manifest}, f, indent=1)
    return params, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--blocks", type=int)
    ap.add_argument("--d", type=int, help="model width (hidden size)")
    ap.add_argument("--ff", type=int, help="MLP inner width")
    ap.add_argument("--vocab", type=int, help="embedding and lm_head rows (0: none)")
    ap.add_argument("--dtype", choices=sorted(DTYPES))
    ap.add_argument("--files", type=int, help="external data files (each tensor whole in one)")
    ap.add_argument("--inline", action="store_true", help="weights inline in the model file (which may then exceed 2 GB)")
    ap.add_argument("--outliers", type=int, default=3, help="outlier input rows per weight")
    ap.add_argument("--outlier-scale", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--verbose", action="store_true")
    o = ap.parse_args()
    defaults = dict(PRESETS[o.preset] if o.preset else PRESETS["llm-small"])
    for k, v in defaults.items():
        if getattr(o, k) is None:
            setattr(o, k, v)
    if o.blocks < 1 or o.d < 1 or o.ff < 1 or o.vocab < 0 or o.files < 1:
        ap.error("blocks, d, ff and files must be positive, vocab not negative")
    params, total = build(o.out, o)
    print(json.dumps({"model": o.out, "parameters": params, "weightBytes": total, "dtype": o.dtype,
                      "files": 0 if o.inline else o.files}))


if __name__ == "__main__":
    main()
