"""Lists the weight-bearing nodes of an ONNX model, written independently of the core
(python3-onnx only), to reconcile with analyze(): every node listed here must be either
one of its layers or one of its `skipped` entries, and nothing else may be either.

A node bears weights when it is
  - a standard Conv, ConvTranspose, Gemm, QLinearConv, ConvInteger, LSTM, GRU or RNN
    (weight ops by definition, whatever feeds them);
  - a standard MatMul, MatMulInteger or QLinearMatMul, or an Einsum, one of whose operands
    is a stored tensor (an initializer or a Constant node's `value`, reached through
    Identity, Cast, Transpose or DequantizeLinear) or a name nothing defines;
  - one of onnxruntime's com.microsoft weight ops (MatMulNBits, QGemm, QAttention, ...).

Usage: weight_nodes.py MODEL  ->  JSON [{"key": "path/name", "op": "Conv"}, ...]
where name is the node's name or "<op>#<index>", and path the chain of sub-graph
attributes ("If_3/then_branch", "Loop_1/body", "<node>/<attr>[k]" for lists).
A standard LSTM, GRU or RNN bears two weights, its input weights W (input 1) and its
recurrent weights R (input 2) (ONNX operator specifications): its entry also has
"parts": ["W", "R"], each of which is a layer or a skipped entry of its own.
"""
import json
import sys

import onnx
from onnx import AttributeProto

ALWAYS = {"Conv", "ConvTranspose", "Gemm", "QLinearConv", "ConvInteger", "LSTM", "GRU", "RNN"}
OPERANDS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
MS_ALWAYS = {"MatMulNBits", "MatMulBnb4", "GatherBlockQuantized", "Attention", "QAttention", "DynamicQuantizeMatMul",
             "QGemm", "QLinearConv", "NhwcConv", "FusedConv", "FusedGemm", "DynamicQuantizeLSTM",
             "ConvTransposeWithDynamicPads"}
MS_OPERANDS = {"MatMulIntegerToFloat": (0, 1), "FusedMatMul": (0, 1)}
PASS = {"Identity", "Cast", "Transpose", "DequantizeLinear"}
RECURRENT = {"LSTM", "GRU", "RNN"}


class Names:
    def __init__(self, graph, parent):
        self.parent = parent
        self.stored = {t.name for t in graph.initializer}
        self.inputs = {i.name for i in graph.input}
        self.made = {}
        for n in graph.node:
            for o in n.output:
                if o:
                    self.made[o] = n
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output and \
                    any(a.name == "value" for a in n.attribute):
                self.stored.add(n.output[0])

    def lookup(self, name):
        """('stored' | 'made' | 'input' | None, producer node)"""
        s = self
        while s is not None:
            if name in s.stored:
                return "stored", None
            if name in s.made:
                return "made", s.made[name]
            if name in s.inputs:
                return "input", None
            s = s.parent
        return None, None


def stored_or_undefined(names, name):
    for _ in range(33):
        if not name:
            return False
        kind, node = names.lookup(name)
        if kind == "stored" or kind is None:
            return True
        if kind == "input":
            return False
        if node.op_type in PASS and node.domain in ("", "ai.onnx") and node.input:
            name = node.input[0]
            continue
        return False
    return False


def bears_weights(node, names):
    std = node.domain in ("", "ai.onnx")
    op = node.op_type
    operand = lambda i: i < len(node.input) and stored_or_undefined(names, node.input[i])
    if std and op in ALWAYS:
        return True
    if std and op in OPERANDS:
        return any(operand(i) for i in OPERANDS[op])
    if std and op == "Einsum":
        return any(operand(i) for i in range(len(node.input)))
    if node.domain == "com.microsoft":
        if op in MS_ALWAYS:
            return True
        if op in MS_OPERANDS:
            return any(operand(i) for i in MS_OPERANDS[op])
    return False


def walk(graph, parent, path, out):
    names = Names(graph, parent)
    for index, node in enumerate(graph.node):
        display = node.name or f"{node.op_type}#{index}"
        if bears_weights(node, names):
            entry = {"key": f"{path}/{display}" if path else display, "op": node.op_type}
            if node.op_type in RECURRENT and node.domain in ("", "ai.onnx"):
                entry["parts"] = ["W", "R"]
            out.append(entry)
        for a in node.attribute:
            prefix = f"{path}/{display}/{a.name}" if path else f"{display}/{a.name}"
            if a.type == AttributeProto.GRAPH:
                walk(a.g, names, prefix, out)
            elif a.type == AttributeProto.GRAPHS:
                for k, g in enumerate(a.graphs):
                    walk(g, names, f"{prefix}[{k}]", out)


def main():
    model = onnx.load(sys.argv[1], load_external_data=False)
    out = []
    walk(model.graph, None, "", out)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
