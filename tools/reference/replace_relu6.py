#!/usr/bin/python3
"""Replaces the named Clip nodes of an ONNX model by Relu (python3-onnx), nothing else.

Usage: /usr/bin/python3 tools/reference/replace_relu6.py IN.onnx OUT.onnx NODE...

NODE is a node's name, or "<op_type>#<index>" for an unnamed node (QuantLens's display
name). The tests use it to build, independently of QuantLens, the float function an
equalized model must reproduce when equalization replaced ReLU6 by Relu.
"""
import sys

import onnx
from onnx import helper


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model = onnx.load(sys.argv[1])
    wanted = set(sys.argv[3:])
    nodes = model.graph.node
    done = set()
    for i, n in enumerate(nodes):
        name = n.name or f"{n.op_type}#{i}"
        if name not in wanted:
            continue
        if n.op_type != "Clip":
            sys.exit(f"{name} is {n.op_type}, not Clip")
        nodes[i].CopyFrom(helper.make_node("Relu", [n.input[0]], list(n.output), name=n.name))
        done.add(name)
    missing = wanted - done
    if missing:
        sys.exit(f"no Clip nodes named {sorted(missing)}")
    onnx.save(model, sys.argv[2])


if __name__ == "__main__":
    main()
