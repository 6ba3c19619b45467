// A tiny protobuf encoder for building exact (and exactly wrong) ONNX bytes in tests.
export function varint(n) {
  let v = BigInt.asUintN(64, BigInt(n));
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const cat = (parts) => Uint8Array.from(parts.flatMap((p) => Array.from(p)));
export const tag = (field, type) => varint((field << 3) | type);
export const int = (field, n) => cat([tag(field, 0), varint(n)]);
export const bytes = (field, b) => cat([tag(field, 2), varint(b.length), b]);
export const str = (field, s) => bytes(field, new TextEncoder().encode(s));
export const msg = (field, ...parts) => bytes(field, cat(parts));
export const f32 = (field, x) => {
  const b = new Uint8Array(5);
  b[0] = (field << 3) | 5;
  new DataView(b.buffer).setFloat32(1, x, true);
  return b;
};
export const concat = (...parts) => cat(parts);
export const floatsLE = (xs) => new Uint8Array(Float32Array.from(xs).buffer);

// TensorProto: dims (1), data_type (2), name (8), raw_data (9)
export const tensor = ({ name, dims, type = 1, raw }) =>
  concat(...dims.map((d) => int(1, d)), int(2, type), str(8, name), ...(raw ? [bytes(9, raw)] : []));
// NodeProto: input (1), output (2), name (3), op_type (4), attribute (5)
export const node = ({ inputs = [], outputs = [], name = '', op, attrs = [] }) =>
  concat(
    ...inputs.map((i) => str(1, i)),
    ...outputs.map((o) => str(2, o)),
    str(3, name),
    str(4, op),
    ...attrs.map((a) => msg(5, a)),
  );
// GraphProto: node (1), name (2), initializer (5); ModelProto: ir_version (1), opset (8), graph (7)
export const graph = ({ nodes = [], inits = [], name = 'g' }) =>
  concat(...nodes.map((n) => msg(1, n)), str(2, name), ...inits.map((t) => msg(5, t)));
export const model = (g, { ir = 7, opset = 13 } = {}) => concat(int(1, ir), msg(8, int(2, opset)), bytes(7, g));

// A one-Conv model with the given weight tensor fields.
export function convModel(weight) {
  return model(
    graph({
      nodes: [node({ inputs: ['x', 'w'], outputs: ['y'], name: 'conv', op: 'Conv' })],
      inits: [weight],
    }),
  );
}

// AttributeProto INT: name (1), i (3), type (20) = 2.
export const intAttr = (name, value) => concat(str(1, name), int(3, value), int(20, 2));

// Normal(0, sigma) float32 values from a fixed seed (mulberry32, Box-Muller).
export function normals(n, seed, sigma = 0.1) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigma * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

/**
 * A model whose one large layer a pool of workers computes in parts (pool.js dealPlan):
 * the Conv 'big_conv' [97, 16, 3, 3] (56 KB, streamed: above the skim's 16 KB), channel 5
 * scaled x50 and channel 40 of 1e-30 values (its float32 squares underflow: the part holding
 * it runs a third pass), beside a Gemm (transB) [10, 97] and a Conv [8, 4, 1, 1], both held.
 * With `nan`: a NaN at channel 80 of big_conv, so that every part reports the layer's error.
 */
export function splitModel({ nan = false } = {}) {
  const inner = 16 * 9;
  const big = normals(97 * inner, 7);
  for (let j = 0; j < inner; j++) {
    big[5 * inner + j] *= 50;
    big[40 * inner + j] *= 1e-30;
  }
  if (nan) big[80 * inner + 3] = NaN;
  const raw = (a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return model(
    graph({
      nodes: [
        node({ inputs: ['x', 'big_w'], outputs: ['h'], name: 'big_conv', op: 'Conv' }),
        node({ inputs: ['f', 'head_w'], outputs: ['y'], name: 'head', op: 'Gemm', attrs: [intAttr('transB', 1)] }),
        node({ inputs: ['z', 'small_w'], outputs: ['u'], name: 'small_conv', op: 'Conv' }),
      ],
      inits: [
        tensor({ name: 'big_w', dims: [97, 16, 3, 3], raw: raw(big) }),
        tensor({ name: 'head_w', dims: [10, 97], raw: raw(normals(970, 11)) }),
        tensor({ name: 'small_w', dims: [8, 4, 1, 1], raw: raw(normals(32, 13)) }),
      ],
    }),
  );
}
