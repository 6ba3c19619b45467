// Where each initializer's raw_data lies in an ONNX file: a minimal protobuf walk
// (ModelProto.graph = 7 -> GraphProto.initializer = 5 -> TensorProto name = 8,
// data_type = 2, raw_data = 9), reading only the field headers from disk, never the
// payloads. Used to point the SIMD pass at exactly the weight bytes.
import fs from 'node:fs';

function varintAt(fd, pos) {
  const b = Buffer.alloc(10);
  const n = fs.readSync(fd, b, 0, 10, pos);
  let v = 0;
  let mul = 1;
  for (let i = 0; i < n; i++) {
    v += (b[i] & 0x7f) * mul;
    mul *= 128;
    if (!(b[i] & 0x80)) return [v, pos + i + 1];
  }
  throw new Error(`bad varint at byte ${pos}`);
}

// Calls fn(field, wireType, valueStart, valueEnd | varintValue) for each field in [start, end).
function fields(fd, start, end, fn) {
  let pos = start;
  while (pos < end) {
    const [tag, p] = varintAt(fd, pos);
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (wt === 0) {
      const [v, q] = varintAt(fd, p);
      fn(field, wt, p, v);
      pos = q;
    } else if (wt === 1) pos = p + 8;
    else if (wt === 5) pos = p + 4;
    else if (wt === 2) {
      const [len, q] = varintAt(fd, p);
      fn(field, wt, q, q + len);
      pos = q + len;
    } else throw new Error(`unsupported wire type ${wt} at byte ${pos}`);
  }
  if (pos !== end) throw new Error('field overruns its message');
}

// Map name -> { offset, length, dataType } of initializers stored in raw_data.
export function initializerRanges(path) {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const out = new Map();
    fields(fd, 0, size, (f, wt, s, e) => {
      if (f !== 7 || wt !== 2) return;
      fields(fd, s, e, (gf, gwt, gs, ge) => {
        if (gf !== 5 || gwt !== 2) return;
        const t = { name: null, dataType: 0, offset: -1, length: 0 };
        fields(fd, gs, ge, (tf, twt, ts, te) => {
          if (tf === 8 && twt === 2) {
            const b = Buffer.alloc(te - ts);
            fs.readSync(fd, b, 0, b.length, ts);
            t.name = b.toString('utf8');
          } else if (tf === 2 && twt === 0) t.dataType = te;
          else if (tf === 9 && twt === 2) {
            t.offset = ts;
            t.length = te - ts;
          }
        });
        if (t.name !== null && t.offset >= 0) out.set(t.name, t);
      });
    });
    return out;
  } finally {
    fs.closeSync(fd);
  }
}
