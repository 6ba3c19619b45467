#!/usr/bin/python3
"""Plain reference Cross Layer Equalization (Nagel et al. 2019) for ONNX models.

Usage: /usr/bin/python3 tools/reference/cle_ref.py IN.onnx OUT.onnx [--sweeps 20] [--relu6-all]

What it does, and nothing more (independent of src/; python3-onnx + numpy only):
  1. folds every BatchNormalization that directly follows a Conv (or a Gemm with
     beta == 1) into it: W' = W*g/sd per output channel, b' = beta + (b - mean)*g/sd,
     sd = sqrt(var + eps);
  2. finds pairs layer1 -> [Relu | Clip(0,6)] -> layer2, where layer1 is a Conv, Gemm
     or MatMul(+Add bias) with a float initializer weight, layer2 a Conv (group 1 or
     depthwise), Gemm or MatMul reading the value as its data input 0, and every value
     in between has exactly one consumer and is not a graph output;
  3. replaces the Clip(0,6) of every pair by Relu (ReLU6 is not scale-equivariant), or
     with --relu6-all every Clip(0,6) of the graph (the paper's preprocessing);
  4. sweeps the pairs (in graph order) --sweeps times: s_i = sqrt(r1_i / r2_i) with
     r = max|w| of layer1's output channel i / layer2's input channel i; layer1's
     output channel i (weight and bias) is divided by s_i, layer2's input channel i
     multiplied by s_i. Zero/NaN/inf ranges give s_i = 1.
No bias absorption, no passing through Pad/MaxPool/Add. A summary goes to stderr as
  cle_ref: bn_folded=N relu6_replaced=N pairs=N sweeps=N (... details)
"""

import argparse
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LAYERS = ("Conv", "Gemm", "MatMul")


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def set_attr(node, name, value):
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.extend([helper.make_attribute(name, value)])


class Graph:
    """Name -> initializer / producer / consumers maps over the top-level graph."""

    def __init__(self, model):
        self.model = model
        self.g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.refresh()

    def refresh(self):
        self.inits = {t.name: t for t in self.g.initializer}
        self.outputs = {o.name for o in self.g.output}
        self.consumers = {}
        for n in self.g.node:
            for i, x in enumerate(n.input):
                if x:
                    self.consumers.setdefault(x, []).append((n, i))

    def array(self, name):
        return numpy_helper.to_array(self.inits[name])

    def float_init(self, name):
        t = self.inits.get(name)
        return t is not None and t.data_type == TensorProto.FLOAT

    def uses(self, name):
        return len(self.consumers.get(name, []))

    def sole_consumer(self, value):
        """The only node reading `value`, or None (several readers, or a graph output)."""
        c = self.consumers.get(value, [])
        if len(c) != 1 or value in self.outputs:
            return None
        return c[0]

    def put(self, name, arr):
        t = self.inits.get(name)
        new = numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name)
        if t is None:
            self.g.initializer.append(new)
            if self.model.ir_version < 4:  # old IR: every initializer is also a graph input
                self.g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(arr.shape)))
        else:
            t.CopyFrom(new)
        self.inits = {t.name: t for t in self.g.initializer}

    def const_value(self, name):
        """Value of an initializer (or empty input name -> None)."""
        if not name or name not in self.inits:
            return None
        return self.array(name)


# --- 1. BatchNormalization folding --------------------------------------------------

def fold_batchnorms(G):
    folded = 0
    for bn in list(G.g.node):
        if bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1:
            continue
        if attr(bn, "training_mode", 0):
            continue
        src = bn.input[0]
        prod = next((n for n in G.g.node if src in n.output), None)
        if prod is None or prod.op_type not in ("Conv", "Gemm") or G.sole_consumer(src) is None:
            continue
        if len(prod.input) < 2 or not G.float_init(prod.input[1]) or G.uses(prod.input[1]) != 1:
            continue
        params = [G.const_value(x) for x in bn.input[1:5]]
        if any(p is None for p in params):
            continue
        gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
        W = G.array(prod.input[1]).astype(np.float64)
        if prod.op_type == "Conv":
            axis = 0
        else:
            if attr(prod, "beta", 1.0) != 1.0 or attr(prod, "alpha", 1.0) != 1.0:
                continue
            axis = 0 if attr(prod, "transB", 0) else 1
        nout = W.shape[axis]
        if gamma.size != nout:
            continue
        has_bias = len(prod.input) > 2 and prod.input[2] != ""
        if has_bias:
            if not G.float_init(prod.input[2]) or G.uses(prod.input[2]) != 1 or G.array(prod.input[2]).size != nout:
                continue
            b = G.array(prod.input[2]).astype(np.float64).reshape(-1)
        else:
            b = np.zeros(nout)
        k = gamma / np.sqrt(var + attr(bn, "epsilon", 1e-5))
        shape = [1] * W.ndim
        shape[axis] = nout
        G.put(prod.input[1], W * k.reshape(shape))
        bias = beta + (b - mean) * k
        if has_bias:
            G.put(prod.input[2], bias.reshape(G.array(prod.input[2]).shape))
        else:
            name = prod.input[1] + "_bnfold_bias"
            G.put(name, bias)
            if len(prod.input) == 2:
                prod.input.append(name)
            else:
                prod.input[2] = name
        prod.output[0] = bn.output[0]
        G.g.node.remove(bn)
        G.refresh()
        folded += 1
    return folded


# --- 2. pair discovery ----------------------------------------------------------------

def is_relu6(G, node):
    if node.op_type != "Clip":
        return False
    if G.opset < 11:
        lo, hi = attr(node, "min", None), attr(node, "max", None)
    else:
        vals = [G.const_value(node.input[i]) if len(node.input) > i else None for i in (1, 2)]
        if any(len(node.input) > i and node.input[i] and v is None for i, v in zip((1, 2), vals)):
            return False  # a bound that is not a constant
        lo, hi = (None if v is None else float(np.asarray(v).reshape(-1)[0]) for v in vals)
    return lo == 0.0 and hi == 6.0


def layer1_info(G, node):
    """(weight, out_axis, bias_name or None, output value) for a layer-1 candidate."""
    if node.op_type not in LAYERS or len(node.input) < 2:
        return None
    w = node.input[1]
    if not G.float_init(w) or G.uses(w) != 1:
        return None
    W = G.inits[w]
    bias, out = None, node.output[0]
    if node.op_type == "Conv":
        axis = 0
        if len(node.input) > 2 and node.input[2]:
            bias = node.input[2]
    elif node.op_type == "Gemm":
        if len(W.dims) != 2:
            return None
        axis = 0 if attr(node, "transB", 0) else 1
        if len(node.input) > 2 and node.input[2]:
            bias = node.input[2]
    else:  # MatMul with the weight on the right; a following Add of a [N] constant is its bias
        if len(W.dims) != 2:
            return None
        axis = 1
        c = G.sole_consumer(out)
        if c and c[0].op_type == "Add":
            other = c[0].input[1 - c[1]]
            if G.float_init(other) and G.array(other).size == W.dims[1] and G.array(other).shape[-1:] == (W.dims[1],):
                bias, out = other, c[0].output[0]
    if bias is not None:
        if not G.float_init(bias) or G.uses(bias) != 1 or G.array(bias).size != W.dims[axis]:
            return None
    return w, axis, bias, out


def layer2_info(G, node, channels):
    """(weight, in_axis, kind) for a layer-2 candidate reading `channels` channels."""
    if node.op_type not in LAYERS or len(node.input) < 2:
        return None
    w = node.input[1]
    if not G.float_init(w) or G.uses(w) != 1:
        return None
    dims = list(G.inits[w].dims)
    if node.op_type == "Conv":
        group = attr(node, "group", 1)
        if group == 1 and len(dims) > 1 and dims[1] == channels:
            return w, 1, "conv"
        if group == channels and dims[0] == channels and dims[1] == 1:
            return w, 0, "depthwise"  # input channel i is output channel i
        return None
    if len(dims) != 2:
        return None
    if node.op_type == "Gemm":
        if attr(node, "transA", 0):
            return None
        axis = 1 if attr(node, "transB", 0) else 0
    else:
        axis = 0
    return (w, axis, node.op_type.lower()) if dims[axis] == channels else None


def find_pairs(G):
    pairs = []
    for n1 in G.g.node:
        l1 = layer1_info(G, n1)
        if l1 is None:
            continue
        w1, ax1, b1, value = l1
        channels = G.inits[w1].dims[ax1]
        c = G.sole_consumer(value)
        act = None
        if c and (c[0].op_type == "Relu" or is_relu6(G, c[0])) and c[1] == 0:
            act = c[0]
            c = G.sole_consumer(act.output[0])
        if c is None or c[1] != 0:
            continue
        n2 = c[0]
        # channel axes must line up: conv -> conv (axis 1 of NCHW), gemm/matmul -> gemm/matmul (last axis)
        if (n1.op_type == "Conv") != (n2.op_type == "Conv"):
            continue
        l2 = layer2_info(G, n2, channels)
        if l2 is None:
            continue
        pairs.append(dict(n1=n1, w1=w1, ax1=ax1, b1=b1, act=act, n2=n2, w2=l2[0], ax2=l2[1], kind=l2[2]))
    return pairs


def replace_relu6(G, pairs, everywhere=False):
    """Clip(0,6) -> Relu: the activations of the pairs, or (everywhere) every Clip(0,6)."""
    clips = [n for n in G.g.node if is_relu6(G, n)] if everywhere else \
        [p["act"] for p in pairs if p["act"] is not None and p["act"].op_type == "Clip"]
    relus = {}
    for act in clips:
        relu = helper.make_node("Relu", [act.input[0]], list(act.output), name=(act.name or "clip") + "_relu")
        idx = list(G.g.node).index(act)
        G.g.node.remove(act)
        G.g.node.insert(idx, relu)
        relus[id(act)] = relu
    for p in pairs:
        p["act"] = relus.get(id(p["act"]), p["act"])
    G.refresh()
    return len(clips)


# --- 3. equalization ------------------------------------------------------------------

def channel_absmax(W, axis):
    return np.abs(np.moveaxis(W, axis, 0).reshape(W.shape[axis], -1)).max(axis=1)


def along(v, ndim, axis):
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def equalize(G, pairs, sweeps):
    W = {}  # working copies in float64
    for p in pairs:
        for k in ("w1", "w2", "b1"):
            if p[k] is not None and p[k] not in W:
                W[p[k]] = G.array(p[k]).astype(np.float64)
    for _ in range(sweeps):
        for p in pairs:
            W1, W2 = W[p["w1"]], W[p["w2"]]
            r1, r2 = channel_absmax(W1, p["ax1"]), channel_absmax(W2, p["ax2"])
            with np.errstate(all="ignore"):
                s = np.sqrt(r1 / r2)
            ok = np.isfinite(r1) & np.isfinite(r2) & (r1 > 0) & (r2 > 0) & np.isfinite(s) & (s > 0)
            s = np.where(ok, s, 1.0)
            W[p["w1"]] = W1 / along(s, W1.ndim, p["ax1"])
            if p["b1"] is not None:
                b = W[p["b1"]]
                W[p["b1"]] = (b.reshape(-1) / s).reshape(b.shape)
            W[p["w2"]] = W2 * along(s, W2.ndim, p["ax2"])
    for name, arr in W.items():
        G.put(name, arr.astype(np.float32))


def used_names(graph):
    names = set()
    for n in graph.node:
        names.update(n.input)
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                names |= used_names(sub)
    return names


def drop_unused(G):
    keep = used_names(G.g) | G.outputs
    dead = [t for t in G.g.initializer if t.name not in keep]
    for t in dead:
        G.g.initializer.remove(t)
    dead_names = {t.name for t in dead}
    for i in [i for i in G.g.input if i.name in dead_names]:
        G.g.input.remove(i)
    G.refresh()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--sweeps", type=int, default=20)
    ap.add_argument("--relu6-all", action="store_true",
                    help="replace every Clip(0,6) by Relu, not only those inside pairs (as the paper does)")
    args = ap.parse_args()
    t0 = time.time()
    model = onnx.load(args.input)
    G = Graph(model)
    folded = fold_batchnorms(G)
    pairs = find_pairs(G)
    relu6 = replace_relu6(G, pairs, args.relu6_all)
    equalize(G, pairs, args.sweeps)
    drop_unused(G)
    onnx.save(model, args.output)
    kinds = {}
    for p in pairs:
        k = f"{p['n1'].op_type.lower()}->{p['kind']}"
        kinds[k] = kinds.get(k, 0) + 1
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))
    print(f"cle_ref: bn_folded={folded} relu6_replaced={relu6} pairs={len(pairs)} sweeps={args.sweeps}"
          f" ({detail}; {time.time() - t0:.2f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
