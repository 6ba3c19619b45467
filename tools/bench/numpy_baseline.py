#!/usr/bin/python3
"""Benchmark baseline: QuantLens's per-output-channel statistics in vectorised numpy.

Usage: /usr/bin/python3 tools/bench/numpy_baseline.py MODEL.onnx [--bins 128] [--out FULL.json]

Times onnx.load (which also reads external data files into the model) + the statistics
of every float32/float16/bfloat16 Conv/Gemm/MatMul weight that is an initializer
(directly or through Identity), as src/stats/stats.hpp defines them:

  per output channel: min, max, mean, population std, absMax, range, relative range,
  Tukey (Q3 + 1.5 IQR) outlier channels, SQNR of symmetric fake quantization for
  int8/int4 x per-tensor/per-channel and of block-wise INT4 with blocks of 32 and 128
  (int4Block32, int4Block128); per layer: the same 6 SQNRs, tensor
  min/max/mean/std/absMax and a `bins`-bin histogram over [tensor min, tensor max];
  per input channel (src/stats/input_channels.hpp): its absMax, the largest |w| over
  every weight that multiplies it (a Conv's group G holds input channels G * (I/g) + j).

Block-wise INT4: the elements of one output channel, in the order of its row here (a
Conv [O, I/g, k...]: the flattened I/g*k; Gemm [N, K] with transB and [K, N] without,
MatMul [..., K, N]: along K), cut into blocks of B consecutive ones, a last partial block
its own; each block is quantized like a channel with s = block absMax / 7 (float32) and
the same zero-scale rule; its squared errors are summed in float32, the blocks' sums in
float64; SQNR against the channel's (the layer's) signal sum x^2. The block absMax come
from |x| once per block of channels (see block_abs_max); blocks of 128 take the max of
the 4 blocks of 32 they cover.

It is meant to be a strong baseline, not a slow loop: every operation is a numpy
ufunc/reduction over a block of whole channels (~1M elements, so the temporaries stay
in cache), written into two scratch buffers allocated once per run; float32 weights
whose channels are rows are numpy views of each tensor's raw_data, with no conversion;
float16 and bfloat16 weights, and weights with their channels last (MatMul's [K, N],
Gemm without transB), become one C-contiguous float32 [channel, element] copy per
layer, made in a single numpy assignment (float16 widens exactly; bfloat16 is the
upper half of the float32 bits). Float32 where the
definitions say float32 (fake quantization, squares, the histogram's bin arithmetic);
per-channel sums are float32 too (numpy's pairwise sum for the mean, einsum's
vectorised dot products for the squares) and are accumulated in float64 across
channels; a channel whose float32 sums end below 1e-24 (squares below float32's normal
range may have been lost) is computed again with its squares and sums in float64, as
QuantLens does. Results agree with QuantLens to rounding (bench.mjs checks every
statistic).

The clamp of the fake quantization, clamp(round(x / s), -qmax, qmax), is left out
because it never changes a result here (in every scheme, blocks included, the scale
comes from the absMax of the values it quantizes): with s = absMax/qmax and inv = 1/s
in float32, |x * inv| <= qmax * (1 + 3 * 2^-24) < qmax + 0.5 for every |x| <= absMax,
so round() already lands in [-qmax, qmax]. This holds for a subnormal s too: a
reciprocal that does not overflow needs s >= 2^-128, which keeps 22 significant bits;
a smaller s gives inv = inf, i.e. the zero-scale rule, inv = 0. Leaving it out is
exact, and saves a full extra pass per scheme (np.clip is one of numpy's slow ufuncs).

Prints one JSON line on stdout: timings (load_s, compute_s = raw_data_copy_s + stats_s,
total_s), peak RSS
(ru_maxrss, KB) after the imports and at the end, and per layer: name, weight, shape,
the 6 layer SQNRs. --out also writes every statistic (after the timed part), named as in
QuantLens's JSON (channels.sqnr.int4Block32, inputChannels.absMax, ...).

Note: with python3-onnx, reading TensorProto.raw_data returns a copy, so this
baseline holds the file's bytes up to three times over its life (the read buffer
inside onnx.load, the parsed message, one layer's raw_data copy at a time); that is
the cost of the python-onnx route, not of the statistics.
"""

import argparse
import json
import math
import resource
import time

import numpy as np
import onnx
from onnx import TensorProto

F32 = np.float32
BLOCK = 1 << 20  # elements per block of whole channels
SCHEMES = (("int8PerTensor", 127, False), ("int8PerChannel", 127, True),
           ("int4PerTensor", 7, False), ("int4PerChannel", 7, True))
BLOCK_SIZES = (32, 128)  # block-wise INT4, "int4Block<B>"; 128 = 4 x 32, see block_noises
REDO_BELOW = 1e-24  # a channel's float32 sums of squares below this are redone in float64


def max_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def weight_array(t):
    """A float32, float16 or bfloat16 tensor as a zero-copy numpy view of its stored values
    (raw_data, external data pulled in by onnx.load) or from float_data/int32_data;
    bfloat16 as its uint16 bit patterns."""
    dims = tuple(int(d) for d in t.dims)
    if t.data_type == TensorProto.FLOAT:
        a = np.frombuffer(t.raw_data, dtype="<f4") if t.HasField("raw_data") else np.asarray(t.float_data, dtype=F32)
    elif t.data_type in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
        # int32_data holds the 16-bit patterns in its low bits
        a = (np.frombuffer(t.raw_data, dtype="<u2") if t.HasField("raw_data")
             else np.asarray(t.int32_data, dtype=np.int64).astype(np.uint16))
        if t.data_type == TensorProto.FLOAT16:
            a = a.view("<f2")
    else:
        raise ValueError(f"{t.name}: not float32, float16 or bfloat16")
    return a.reshape(dims), t.data_type == TensorProto.BFLOAT16


def as_float32(a, bf16):
    """A C-contiguous float32 copy of `a` (a view of any layout) in one pass; float32 that
    is already C-contiguous stays as it is. float16 widens exactly; bfloat16 is the upper
    half of a float32's bits."""
    if bf16:
        out = np.empty(a.shape, np.uint32)
        out[...] = a
        out <<= np.uint32(16)
        return out.view(F32)
    if a.dtype == F32 and a.flags.c_contiguous:
        return a
    out = np.empty(a.shape, F32)
    out[...] = a
    return out


def find_layers(graph):
    """Yields (name, weight name, shape, [C, M] float32 C-contiguous, input-channel layout)
    per Conv/Gemm/MatMul weight, one at a time: reading raw_data from a protobuf message
    copies it into a new bytes object, so each copy is dropped before the next layer's is
    made. The input-channel layout says how each channel's M elements split, (pre, J, post)
    in C order with J the input channel, and the op's groups (stats/input_channels.hpp)."""
    inits = {t.name: t for t in graph.initializer}
    alias = {}
    for n in graph.node:  # Identity of an initializer
        if n.op_type == "Identity" and n.input and n.input[0] in inits and n.output:
            alias[n.output[0]] = n.input[0]
    for i, n in enumerate(graph.node):
        if n.op_type not in ("Conv", "Gemm", "MatMul") or len(n.input) < 2:
            continue
        wname = alias.get(n.input[1], n.input[1])
        if wname not in inits:
            continue
        w, bf16 = weight_array(inits[wname])
        if w.ndim < 2:  # QuantLens skips these too: no channel axis
            continue
        if n.op_type == "Conv":  # [O, I/g, k...]: input channel G * (I/g) + j
            groups = next((a.i for a in n.attribute if a.name == "group"), 1)
            if groups < 1 or w.shape[0] % groups:  # QuantLens skips these too
                continue
            ins = dict(axis=1, groups=groups, pre=1, J=w.shape[1], post=int(np.prod(w.shape[2:], dtype=np.int64)))
            ch = as_float32(w.reshape(w.shape[0], -1), bf16)
        elif n.op_type == "Gemm":  # [N, K] with transB, else [K, N]
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            ins = dict(axis=1 if trans_b else 0, groups=1, pre=1, J=w.shape[1 if trans_b else 0], post=1)
            ch = as_float32(w if trans_b else w.T, bf16)
        else:  # MatMul: x @ W, W [..., K, N]: output channels along the last axis, input along K
            ins = dict(axis=w.ndim - 2, groups=1, pre=int(np.prod(w.shape[:-2], dtype=np.int64)), J=w.shape[-2], post=1)
            ch = as_float32(np.moveaxis(w, -1, 0).reshape(w.shape[-1], -1), bf16)
        yield n.name or f"{n.op_type}#{i}", wname, list(w.shape), ch, ins
        w = ch = None  # let the copy go before the next layer's is made


def sqnr_db(signal, noise):
    signal = np.asarray(signal, np.float64)
    noise = np.asarray(noise, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise > 0, 10.0 * np.log10(signal / noise), np.inf)


def scale_inv(abs_max, qmax):
    """float32 scale and reciprocal; a zero or overflowing reciprocal quantizes to 0."""
    s = np.asarray(abs_max, F32) / F32(qmax)
    with np.errstate(divide="ignore", over="ignore"):
        inv = F32(1) / s
    bad = ~np.isfinite(inv) | (s <= 0)
    return np.where(bad, F32(0), s).astype(F32), np.where(bad, F32(0), inv).astype(F32)


def view(a, shape):
    """`a` reshaped without a copy (an error where that is impossible): the block views
    below are written through."""
    v = a.view()
    v.shape = shape
    return v


def block_abs_max(t, B):
    """The absMax of each block of B consecutive elements of each row of t = |x| [n, M]
    (the last partial block its own): [n, ceil(M / B)]. numpy's max over a short last
    axis pays a per-row overhead (~10x slower per element than over long rows), so the
    blocks' halves are folded together by np.maximum on [n, nb, B/2] views down to 8
    values per block, then those 8 columns are maxed by 7 np.maximum over [n, nb]
    strided views (about twice as fast as np.max(axis=2) on this machine)."""
    n, M = t.shape
    nf = M // B
    out = np.empty((n, -(-M // B)), F32)
    if nf:
        h = view(t[:, :nf * B], (n, nf, B))
        while h.shape[2] > 8 and h.shape[2] % 2 == 0:
            w = h.shape[2] // 2
            h = np.maximum(h[..., :w], h[..., w:], out=view(scratch(F32, n * nf, w, w % 2), (n, nf, w)))
        o = out[:, :nf]
        o[...] = h[..., 0]
        for j in range(1, h.shape[2]):
            np.maximum(o, h[..., j], out=o)
    if nf * B < M:
        np.max(t[:, nf * B:], axis=1, out=out[:, nf])
    return out


def block_noise(b, t, B, s, inv, wide=False):
    """Per row of b [n, M]: the sum over its blocks of B (block parameters s, inv [n, nb])
    of the block's squared INT4 errors, summed in float32 within a block (wide: float64),
    in float64 across blocks. t [n, M] is scratch."""
    n, M = b.shape
    nf = M // B
    noise = np.zeros(n, np.float64)
    parts = []
    if nf:
        shape = (n, nf, B)
        parts.append((view(b[:, :nf * B], shape), view(t[:, :nf * B], shape), s[:, :nf, None], inv[:, :nf, None]))
    if nf * B < M:  # the last, partial block
        parts.append((b[:, nf * B:], t[:, nf * B:], s[:, nf:], inv[:, nf:]))
    for x, e, sc, iv in parts:
        np.multiply(x, iv, out=e)
        np.rint(e, out=e)  # round half to even; no clamp, see above
        np.multiply(e, sc, out=e)
        np.subtract(x, e, out=e)
        if wide:
            e = e.astype(np.float64)
        sq = np.einsum("...j,...j->...", e, e)  # per block
        noise += sq.sum(axis=1, dtype=np.float64) if sq.ndim == 2 else sq
    return noise


def block_noises(b, t, wide=False):
    """[len(BLOCK_SIZES), n]: each row of b [n, M]'s block-wise INT4 noise for every
    block size. t [n, M] holds |b| on entry, and is scratch."""
    n, M = b.shape
    out = np.empty((len(BLOCK_SIZES), n), np.float64)
    amax = block_abs_max(t, BLOCK_SIZES[0])
    for k, B in enumerate(BLOCK_SIZES):
        if k:  # a block of B is the blocks of BLOCK_SIZES[0] it covers (zeros pad the last)
            f = B // BLOCK_SIZES[0]
            pad = np.zeros((n, -(-M // B) * f), F32)
            pad[:, :amax.shape[1]] = amax
            amax = np.max(view(pad, (n, -1, f)), axis=2)
        s, inv = scale_inv(amax, 7)
        out[k] = block_noise(b, t, B, s, inv, wide)
    return out


_scratch = {}


def scratch(dtype, rows, cols, key=""):
    """A [rows, cols] work array, reusing one allocation (per dtype and key) for the
    whole run: fresh memory is expensive to touch on some machines, and a baseline
    should not pay for it once per layer."""
    a = _scratch.get((dtype, key))
    if a is None or a.size < rows * cols:
        a = _scratch[(dtype, key)] = np.empty(max(rows * cols, BLOCK), dtype)
    return a[:rows * cols].reshape(rows, cols)


def layer_stats(ch, bins, ins):
    C, M = ch.shape
    G = ins["groups"]
    per_group = C // G  # output channels per group: blocks of rows hold whole groups
    rows = max(1, BLOCK // M)
    if G > 1:
        rows = max(per_group, rows // per_group * per_group)
    buf = scratch(F32, min(rows, C), M)
    ibuf = scratch(np.int32, min(rows, C), M)

    # pass 1: min, max, sum per channel
    cmin = np.empty(C, F32)
    cmax = np.empty(C, F32)
    csum = np.empty(C, F32)
    for r in range(0, C, rows):
        b = ch[r:r + rows]
        np.min(b, axis=1, out=cmin[r:r + rows])
        np.max(b, axis=1, out=cmax[r:r + rows])
        np.sum(b, axis=1, out=csum[r:r + rows])
    if not (np.isfinite(cmin).all() and np.isfinite(cmax).all()):
        raise ValueError("NaN or infinite weights")
    mean = csum.astype(np.float64) / M
    mean32 = mean.astype(F32)
    absmax = np.maximum(np.abs(cmin), np.abs(cmax))
    crange = cmax - cmin
    tmin, tmax = F32(cmin.min()), F32(cmax.max())
    tabs = F32(max(abs(tmin), abs(tmax)))
    params = []
    for _, qmax, per_channel in SCHEMES:
        s, inv = scale_inv(absmax if per_channel else tabs, qmax)
        params.append((s[:, None], inv[:, None]) if per_channel else (s, inv))
    width = F32(tmax - tmin)
    with np.errstate(divide="ignore", over="ignore"):
        hs = F32(bins) / width if width > 0 else F32(0)
    if not np.isfinite(hs):
        hs = F32(0)

    # pass 2: deviation, signal, 4 quantization noises, histogram; then |x| for the
    # input channels' absMax and the block-wise INT4 noises (block absMax, then errors)
    dev = np.empty(C, F32)
    sig = np.empty(C, F32)
    noise = np.empty((4, C), F32)
    bnoise = np.empty((len(BLOCK_SIZES), C), np.float64)
    hist = np.zeros(bins, np.int64)
    pre, J, post = ins["pre"], ins["J"], ins["post"]
    in_abs = np.zeros(M if G == 1 else (G, J), F32)  # G == 1: per column of ch, reduced at the end
    for r in range(0, C, rows):
        b = ch[r:r + rows]
        n = b.shape[0]
        t = buf[:n]
        sl = slice(r, r + n)
        sig[sl] = np.einsum("ij,ij->i", b, b)
        np.subtract(b, mean32[sl, None], out=t)
        dev[sl] = np.einsum("ij,ij->i", t, t)
        for k, (s, inv) in enumerate(params):
            if s.ndim:
                s, inv = s[sl], inv[sl]
            np.multiply(b, inv, out=t)
            np.rint(t, out=t)  # round half to even
            np.multiply(t, s, out=t)
            np.subtract(b, t, out=t)
            noise[k, sl] = np.einsum("ij,ij->i", t, t)
        np.subtract(b, tmin, out=t)  # >= 0: x >= tensor min
        np.multiply(t, hs, out=t)
        np.minimum(t, F32(bins - 1), out=t)
        ib = ibuf[:n]
        ib[...] = t  # truncation toward zero = floor here
        hist += np.bincount(ib.ravel(), minlength=bins)

        np.abs(b, out=t)
        if G == 1:
            np.maximum(in_abs, np.max(t, axis=0), out=in_abs)
        else:  # rows r.. hold whole groups r / per_group, ...
            np.max(view(t, (n // per_group, per_group, pre * J, post)), axis=(1, 3),
                   out=in_abs[r // per_group:(r + n) // per_group])
        bnoise[:, sl] = block_noises(b, t)

    dev64, sig64, noise64 = dev.astype(np.float64), sig.astype(np.float64), noise.astype(np.float64)
    # Channels whose float32 sums may have lost squares below float32's normal range
    # (absMax ~1e-19 and less) are computed again with every square in float64, as
    # QuantLens does (stats.cpp, kRedoBelow): none in VGG-16, ResNet-50, MobileNetV2.
    redo = np.nonzero((np.minimum(np.minimum(dev, sig), noise.min(axis=0)) < REDO_BELOW)
                      | (bnoise.min(axis=0) < REDO_BELOW))[0]
    for j in range(0, redo.size, rows):
        ix = redo[j:j + rows]
        x = ch[ix]
        t = buf[:ix.size]
        xd = x.astype(np.float64)
        d = xd - mean[ix, None]
        dev64[ix] = np.einsum("ij,ij->i", d, d)
        sig64[ix] = np.einsum("ij,ij->i", xd, xd)
        for k, (s, inv) in enumerate(params):
            if s.ndim:
                s, inv = s[ix], inv[ix]
            np.multiply(x, inv, out=t)
            np.rint(t, out=t)
            np.multiply(t, s, out=t)
            np.subtract(x, t, out=t)
            e = t.astype(np.float64)
            noise64[k, ix] = np.einsum("ij,ij->i", e, e)
        np.abs(x, out=t)
        bnoise[:, ix] = block_noises(x, t, wide=True)
    std = np.sqrt(dev64 / M)
    tmean = float(csum.astype(np.float64).sum() / (C * M))
    tstd = math.sqrt(float((dev64 + M * (mean - tmean) ** 2).sum()) / (C * M))
    nz = crange[crange > 0]
    rel = crange.astype(np.float64) / np.float64(nz.min()) if nz.size else np.zeros(C)
    q1, q3 = np.percentile(rel, [25, 75])
    thr = q3 + 1.5 * (q3 - q1)
    if G == 1:
        in_abs = np.max(view(in_abs, (pre, J, post)), axis=(0, 2))
    bnames = [f"int4Block{B}" for B in BLOCK_SIZES]
    ch_sqnr = {name: sqnr_db(sig64, noise64[k]) for k, (name, _, _) in enumerate(SCHEMES)}
    ch_sqnr.update({name: sqnr_db(sig64, bnoise[k]) for k, name in enumerate(bnames)})
    sqnr = {name: float(sqnr_db(sig64.sum(), noise64[k].sum())) for k, (name, _, _) in enumerate(SCHEMES)}
    sqnr.update({name: float(sqnr_db(sig64.sum(), bnoise[k].sum())) for k, name in enumerate(bnames)})
    return {
        "channels": {"count": C, "min": cmin, "max": cmax, "mean": mean, "std": std, "absMax": absmax,
                     "range": crange, "relativeRange": rel, "sqnr": ch_sqnr},
        "tensor": {"min": tmin, "max": tmax, "mean": tmean, "std": tstd, "absMax": tabs},
        "histogram": {"min": tmin, "max": tmax, "counts": hist},
        "outlierChannels": np.nonzero(rel > thr)[0],
        "outlierThreshold": float(thr),
        "sqnr": sqnr,
        "inputChannels": {"count": G * J, "axis": ins["axis"], "groups": G, "perGroup": J,
                          "absMax": in_abs.reshape(-1)},
    }


def run_all(model, bins):
    """Every layer's statistics; also the time spent getting each weight out of the
    protobuf message (python-onnx copies raw_data) and in the statistics proper."""
    layers, copy_s, stats_s = [], 0.0, 0.0
    it = find_layers(model.graph)
    while True:
        a = time.perf_counter()
        try:
            name, w, shape, ch, ins = next(it)
        except StopIteration:
            break
        b = time.perf_counter()
        layers.append((name, w, shape, layer_stats(ch, bins, ins)))
        ch = None
        copy_s += b - a
        stats_s += time.perf_counter() - b
    return layers, copy_s, stats_s


def plain(x):
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()]
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--bins", type=int, default=128)
    ap.add_argument("--out", help="write every statistic as JSON here (not timed)")
    ap.add_argument("--again", action="store_true",
                    help="after the timed run, compute once more on the loaded model (reported as `again`)")
    args = ap.parse_args()
    rss_imports = max_rss_kb()

    t0 = time.perf_counter()
    model = onnx.load(args.model)
    t1 = time.perf_counter()
    layers, copy_s, stats_s = run_all(model, args.bins)
    t2 = time.perf_counter()
    rss_end = max_rss_kb()
    again = None
    if args.again:  # steady state: the model is loaded and its pages touched
        _, again_copy, again_stats = run_all(model, args.bins)
        again = {"copy_s": again_copy, "stats_s": again_stats}

    weights = sum(int(np.prod(shape)) for _, _, shape, _ in layers)
    print(json.dumps({
        "load_s": t1 - t0, "compute_s": t2 - t1, "total_s": t2 - t0,
        "max_rss_kb_after_imports": rss_imports, "max_rss_kb": rss_end,
        "weights": weights, "raw_data_copy_s": copy_s, "stats_s": stats_s, "again": again,
        "layers": [{"name": n, "weight": w, "shape": s, "sqnr": plain(st["sqnr"])} for n, w, s, st in layers],
    }))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"layers": [dict(name=n, weight=w, shape=s, **plain(st)) for n, w, s, st in layers]}, f)


if __name__ == "__main__":
    main()
