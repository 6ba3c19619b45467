#!/usr/bin/python3
"""Exports the benchmark models: torchvision mobilenet_v2, resnet50 and vgg16 with
random (seeded) weights, in eval mode, to ONNX opset 13 with a 1x3x224x224 input.

Usage: /usr/bin/python3 tools/bench/export_models.py OUTDIR [NAME ...]

No download: weights=None. Deterministic: torch.manual_seed(SEED) before each model
is built, so the same torch/torchvision versions give the same weights. In eval mode
the exporter folds BatchNorm into the preceding Conv. Each file is written to a
temporary name and renamed, so an interrupted export never leaves a truncated model.
Prints one line per model: NAME PATH BYTES.
"""

import os
import sys

SEED = 20240601
MODELS = ("mobilenet_v2", "resnet50", "vgg16")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model {n!r}; choose from {', '.join(MODELS)}")
    try:
        import torch
        import torchvision
    except ImportError as e:
        print(f"export_models.py: {e}; install with: apt-get install -y python3-torch python3-torchvision",
              file=sys.stderr)
        sys.exit(3)
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in names:
        torch.manual_seed(SEED)
        model = getattr(torchvision.models, name)(weights=None).eval()
        x = torch.zeros(1, 3, 224, 224)
        path = os.path.join(outdir, f"{name}.onnx")
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(model, x, tmp, opset_version=13, input_names=["input"], output_names=["logits"],
                              do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
        os.replace(tmp, path)
        print(f"{name} {path} {os.path.getsize(path)}", flush=True)


if __name__ == "__main__":
    main()
