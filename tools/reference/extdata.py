#!/usr/bin/python3
"""External-data copies of ONNX models, and checks of an equalized one (python3-onnx + numpy).

Usage:
  extdata.py save IN.onnx OUT.onnx [--files N] [--folder SUB] [--threshold BYTES]
      OUT.onnx with every initializer (size_threshold=0; --threshold: those of BYTES or
      more, onnx's own default being 1024) stored as external data. With
      --files 1 (the default) as onnx.save_model(save_as_external_data=True,
      all_tensors_to_one_file=True) writes it: one file OUT.onnx.data. With --files N > 1,
      the initializers spread round-robin over N files SUB/part0.bin ... (SUB default
      'data', a sub-folder: locations with a folder part), written by
      external_data_helper.write_external_data_tensors.
  extdata.py check EXT_OUT.onnx INLINE_OUT.onnx [SOURCE.onnx]
      EXT_OUT.onnx (an equalized external-data model) passes onnx.checker with its full
      path; it and INLINE_OUT.onnx (the inline original, equalized) are loaded with their
      external data, and every initializer (name, order, dims, type, bytes), node, input,
      output, opset and metadata entry must be the same. Prints one JSON line:
      {"ok": true, "initializers": N, "external": N, "locations": [...], "offsets": [[name, offset, length], ...],
       "inlineFromSource": [names of EXT_OUT's inline initializers that SOURCE.onnx stores as external data]}
      or exits 1 with what differs.
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor, set_external_data, write_external_data_tensors


def save(src, dst, files, folder, threshold):
    m = onnx.load(src)
    if files <= 1:
        onnx.save_model(m, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(dst) + ".data", size_threshold=threshold)
        return
    base = os.path.dirname(os.path.abspath(dst))
    os.makedirs(os.path.join(base, folder), exist_ok=True)
    for i, t in enumerate(m.graph.initializer):
        if len(numpy_helper.to_array(t).tobytes()) < threshold:
            continue
        if not t.HasField("raw_data"):  # typed fields to raw_data, as onnx's converter requires
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t), t.name))
        set_external_data(t, location=f"{folder}/part{i % files}.bin")
        t.data_location = TensorProto.EXTERNAL
    write_external_data_tensors(m, base)
    onnx.save(m, dst)


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def loaded(path):
    """onnx.load with its external data, through load_external_data_for_tensor; an empty
    tensor (length 0) is read as empty (onnx 1.12 reads a length of 0 as 'to the end of the file')."""
    m = onnx.load(path, load_external_data=False)
    base = os.path.dirname(os.path.abspath(path))
    for t in m.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        kv = {e.key: e.value for e in t.external_data}
        if int(kv.get("length", -1)) == 0:
            t.raw_data = b""
        else:
            load_external_data_for_tensor(t, base)
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT
    return m


def check(ext_path, inline_path, source=None):
    onnx.checker.check_model(ext_path)  # the path: the checker then checks the external files too
    raw = onnx.load(ext_path, load_external_data=False)
    external = [t for t in raw.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    locations = sorted({e.value for t in external for e in t.external_data if e.key == "location"})
    offsets = []
    for t in external:
        kv = {e.key: e.value for e in t.external_data}
        offsets.append([t.name, int(kv.get("offset", 0)), int(kv["length"])])
    from_source = []
    if source:
        src = onnx.load(source, load_external_data=False)
        was = {t.name for t in src.graph.initializer if t.data_location == TensorProto.EXTERNAL}
        from_source = [t.name for t in raw.graph.initializer if t.data_location != TensorProto.EXTERNAL and t.name in was]
    a = loaded(ext_path)
    b = loaded(inline_path)
    ia, ib = a.graph.initializer, b.graph.initializer
    if [t.name for t in ia] != [t.name for t in ib]:
        fail(f"initializer names differ: {[t.name for t in ia]} vs {[t.name for t in ib]}")
    for x, y in zip(ia, ib):
        xa, ya = numpy_helper.to_array(x), numpy_helper.to_array(y)
        if xa.dtype != ya.dtype or xa.shape != ya.shape or xa.tobytes() != ya.tobytes():
            fail(f"initializer {x.name} differs")
    for field in ("node", "input", "output"):
        if [n.SerializeToString() for n in getattr(a.graph, field)] != [n.SerializeToString() for n in getattr(b.graph, field)]:
            fail(f"graph {field} differ")
    if [(o.domain, o.version) for o in a.opset_import] != [(o.domain, o.version) for o in b.opset_import]:
        fail("opsets differ")
    if [(p.key, p.value) for p in a.metadata_props] != [(p.key, p.value) for p in b.metadata_props]:
        fail("metadata differ")
    print(json.dumps({"ok": True, "initializers": len(ia), "external": len(external), "locations": locations,
                      "offsets": offsets, "inlineFromSource": from_source}))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "save":
        files = int(args[args.index("--files") + 1]) if "--files" in args else 1
        folder = args[args.index("--folder") + 1] if "--folder" in args else "data"
        threshold = int(args[args.index("--threshold") + 1]) if "--threshold" in args else 0
        save(args[1], args[2], files, folder, threshold)
    elif len(args) in (3, 4) and args[0] == "check":
        check(*args[1:])
    else:
        sys.exit(__doc__)
