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
