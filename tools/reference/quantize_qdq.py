#!/usr/bin/python3
"""Writes a weight-quantized copy of a float ONNX model (QuantLens test helper).

Usage: /usr/bin/python3 tools/reference/quantize_qdq.py IN.onnx OUT.onnx
           [--scheme int8-per-channel | uint8-per-tensor] [--qlinear] [--rename]

For every Conv, ConvTranspose, Gemm and MatMul of the main graph whose weight input
(input 1) is a float32 initializer of rank >= 2 (rank >= 3 for convolutions):

  int8-per-channel (default): symmetric, one scale per output channel,
      s_c = max|w_c| / 127 (1 when the channel is all zero), q = clip(rint(w / s_c), -127, 127),
      zero point 0 (int8); the output-channel axis is 0 for Conv, 1 for ConvTranspose,
      0 / 1 for Gemm with / without transB, the last axis for MatMul.
  uint8-per-tensor: asymmetric, one scale and zero point for the tensor,
      lo = min(min w, 0), hi = max(max w, 0), s = (hi - lo) / 255 (1 when 0),
      zp = clip(rint(-lo / s), 0, 255), q = clip(rint(w / s) + zp, 0, 255).

The float initializer W is replaced by W_quantized (int8 / uint8), W_scale and
W_zero_point, and a DequantizeLinear node "W_DequantizeLinear" (axis attribute for
per-channel) makes W_dequantized, which the layer reads instead of W: the names
onnxruntime's quantizer uses. A weight shared by several layers is quantized once.

--qlinear: Conv layers, their weight quantized as above, become
  QuantizeLinear(x) -> QLinearConv -> DequantizeLinear(y) (activation scale 1/64,
  uint8 zero point 128; bias as int32 at scale x_scale * w_scale), so the weight is
  read by QLinearConv itself. Other layers get DequantizeLinear as without --qlinear.
--rename: every node, initializer and intermediate value gets a new name ("n0",
  "t0", "v0", ...; graph inputs and outputs keep theirs), so only graph position
  can match the layers of the copy with the original's.

DequantizeLinear needs opset 10 (per-axis: 13), QLinearConv 10; the opset import is
left as it is, so the copy of an older model is for weight analysis, not for running. Needs python3-onnx and
python3-numpy; shares no code with QuantLens.
"""

import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

DEFAULT_DOMAINS = ("", "ai.onnx")


def channel_axis(node, rank):
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return rank - 1  # MatMul: B [..., K, N]


def quantize(w, scheme, axis):
    w = w.astype(np.float64)
    if scheme == "int8-per-channel":
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        absmax = np.abs(moved).max(axis=1) if moved.shape[1] else np.zeros(w.shape[axis])
        scale = (absmax / 127.0).astype(np.float32)
        scale[scale == 0] = 1.0
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.rint(w / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
        return q, scale, np.zeros(w.shape[axis], dtype=np.int8)
    lo = min(float(w.min()), 0.0) if w.size else 0.0
    hi = max(float(w.max()), 0.0) if w.size else 0.0
    s = np.float32((hi - lo) / 255.0)
    if s == 0:
        s = np.float32(1.0)
    zp = int(np.clip(np.rint(-lo / float(s)), 0, 255))
    q = np.clip(np.rint(w / float(s)) + zp, 0, 255).astype(np.uint8)
    return q, np.array(s, dtype=np.float32), np.array(zp, dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--scheme", choices=["int8-per-channel", "uint8-per-tensor"], default="int8-per-channel")
    ap.add_argument("--qlinear", action="store_true")
    ap.add_argument("--rename", action="store_true")
    args = ap.parse_args()

    model = onnx.load(args.input)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def weight_of(n):
        if n.domain not in DEFAULT_DOMAINS or n.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            return None
        if len(n.input) < 2 or n.input[1] not in inits:
            return None
        t = inits[n.input[1]]
        if t.data_type != TensorProto.FLOAT:
            return None
        rank = len(t.dims)
        if rank < 2 or (n.op_type in ("Conv", "ConvTranspose") and rank < 3):
            return None
        return t

    quantized = {}  # weight name -> (q name, scale name, zp name, dequantized name, axis, w_scale array)
    new_inits, dq_nodes = [], []
    qlinear_nodes = {}  # id(node) -> replacement nodes
    layers = 0
    for n in list(g.node):
        t = weight_of(n)
        if t is None:
            continue
        layers += 1
        name = t.name
        axis = channel_axis(n, len(t.dims))
        if name not in quantized:
            w = numpy_helper.to_array(t)
            q, scale, zp = quantize(w, args.scheme, axis)
            qn, sn, zn, dn = name + "_quantized", name + "_scale", name + "_zero_point", name + "_dequantized"
            new_inits += [numpy_helper.from_array(q, qn), numpy_helper.from_array(scale, sn), numpy_helper.from_array(zp, zn)]
            attrs = {"axis": axis} if args.scheme == "int8-per-channel" else {}
            dq_nodes.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [dn], name=name + "_DequantizeLinear", **attrs))
            quantized[name] = (qn, sn, zn, dn, axis, scale)
        qn, sn, zn, dn, axis, scale = quantized[name]
        if args.qlinear and n.op_type == "Conv" and axis == 0:
            base = n.name or n.output[0]
            xs, xz, ys, yz = base + "_x_scale", base + "_x_zero_point", base + "_y_scale", base + "_y_zero_point"
            new_inits += [numpy_helper.from_array(np.array(1 / 64, dtype=np.float32), xs),
                          numpy_helper.from_array(np.array(128, dtype=np.uint8), xz),
                          numpy_helper.from_array(np.array(1 / 64, dtype=np.float32), ys),
                          numpy_helper.from_array(np.array(128, dtype=np.uint8), yz)]
            inputs = [base + "_x_quantized", xs, xz, qn, sn, zn, ys, yz]
            if len(n.input) > 2 and n.input[2]:
                b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
                bscale = (1 / 64) * scale.astype(np.float64).reshape(-1)
                bq = np.clip(np.rint(b / bscale), -2**31, 2**31 - 1).astype(np.int32)
                new_inits.append(numpy_helper.from_array(bq, base + "_bias_quantized"))
                inputs.append(base + "_bias_quantized")
            qconv = helper.make_node("QLinearConv", inputs, [base + "_y_quantized"], name=n.name)
            qconv.attribute.extend([a for a in n.attribute])
            qlinear_nodes[id(n)] = [
                helper.make_node("QuantizeLinear", [n.input[0], xs, xz], [base + "_x_quantized"], name=base + "_QuantizeLinear"),
                qconv,
                helper.make_node("DequantizeLinear", [base + "_y_quantized", ys, yz], [n.output[0]], name=base + "_y_DequantizeLinear"),
            ]
        else:
            n.input[1] = dn

    # Rebuild the node list: DequantizeLinear nodes first (their inputs are initializers).
    used_dq = {i for n in g.node for i in n.input}
    nodes = [d for d in dq_nodes if d.output[0] in used_dq]
    for n in g.node:
        nodes.extend(qlinear_nodes.get(id(n), [n]))
    del g.node[:]
    g.node.extend(nodes)
    # Drop the float weights nothing reads any more, and their graph inputs (old IR).
    read = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name not in quantized or t.name in read]
    dropped = {t.name for t in g.initializer} - {t.name for t in keep}
    del g.initializer[:]
    g.initializer.extend(keep + [t for t in new_inits if t.name in read])
    kept_inputs = [i for i in g.input if i.name not in dropped]
    del g.input[:]
    g.input.extend(kept_inputs)
    if model.ir_version < 4:  # initializers must then be graph inputs too
        g.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in new_inits if t.name in read)

    if args.rename:
        names = {t.name: "t%d" % k for k, t in enumerate(g.initializer)}
        keep_names = {o.name for o in g.output} | {i.name for i in g.input if i.name not in names}
        k = 0
        for n in g.node:
            for o in n.output:
                if o and o not in keep_names and o not in names:
                    names[o] = "v%d" % k
                    k += 1
        for t in g.initializer:
            t.name = names[t.name]
        for vi in list(g.input) + list(g.value_info):
            vi.name = names.get(vi.name, vi.name)
        for k, n in enumerate(g.node):
            n.name = "n%d" % k
            for j, i in enumerate(n.input):
                n.input[j] = names.get(i, i)
            for j, o in enumerate(n.output):
                n.output[j] = names.get(o, o)
    onnx.save(model, args.output)
    print("quantize_qdq: %d layers, %d weights quantized (%s%s)" %
          (layers, len(quantized), args.scheme, ", QLinearConv" if qlinear_nodes else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
