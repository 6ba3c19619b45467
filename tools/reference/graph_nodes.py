#!/usr/bin/env python3
"""The independent reference for analyze()'s `graph` (src/graph/nodes.hpp), with python3-onnx:
every node of a model, each followed by the nodes of its sub-graphs (attributes in order,
depth first), with its display name (the node's name, or "<op>#<index in its graph>"), op,
domain, inputs, outputs, the path of its sub-graph ("<owner path>/<owner>/<attr>", "[k]"
for the k-th of a list of graphs) and its owner's position; the main graph's inputs that
are not initializers, and its outputs. Prints JSON.

usage: graph_nodes.py MODEL.onnx
"""
import json
import sys

import onnx


def display(node, index):
    return node.name if node.name else f"{node.op_type}#{index}"


def walk(graph, path, owner, out):
    for index, node in enumerate(graph.node):
        me = len(out)
        out.append({
            "name": display(node, index),
            "op": node.op_type,
            "domain": node.domain,
            "inputs": list(node.input),
            "outputs": list(node.output),
            "path": path,
            "owner": owner,
        })
        for attr in node.attribute:
            base = (path + "/" if path else "") + display(node, index) + "/" + attr.name
            if attr.type == onnx.AttributeProto.GRAPH:
                walk(attr.g, base, me, out)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for k, g in enumerate(attr.graphs):
                    walk(g, f"{base}[{k}]", me, out)


def main():
    model = onnx.load(sys.argv[1], load_external_data=False)
    nodes = []
    walk(model.graph, "", -1, nodes)
    stored = {t.name for t in model.graph.initializer}
    print(json.dumps({
        "nodes": nodes,
        "inputs": [v.name for v in model.graph.input if v.name not in stored],
        "outputs": [v.name for v in model.graph.output],
    }))


if __name__ == "__main__":
    main()
