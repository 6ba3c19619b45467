// The JSON of toJSON(result) written a piece at a time: the same text as
// JSON.stringify(toJSON(result)), character for character, without building the
// plain-array copy of every per-channel typed array nor the whole string. An LLM's
// analysis holds millions of per-channel values; its JSON is hundreds of MB, which
// JSON.stringify would hold (twice, with the copy) before the first byte is written.
import { float32Text } from './format.js';

const finite = (x) => (Number.isFinite(x) ? x : null);
const number = (x) => (x === null ? 'null' : String(x));

// Yields the JSON text of `value` as toJSON + JSON.stringify would write it, in pieces.
export function* jsonPieces(value) {
  if (value instanceof Float32Array) {
    yield* typedArray(value, float32Text);
  } else if (ArrayBuffer.isView(value)) {
    yield* typedArray(value, (x) => number(finite(x)));
  } else if (Array.isArray(value)) {
    yield '[';
    for (let i = 0; i < value.length; i++) {
      if (i) yield ',';
      const v = value[i];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') yield 'null';
      else yield* jsonPieces(v);
    }
    yield ']';
  } else if (value && typeof value === 'object') {
    yield '{';
    let first = true;
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      yield `${first ? '' : ','}${JSON.stringify(k)}:`;
      first = false;
      yield* jsonPieces(v);
    }
    yield '}';
  } else if (typeof value === 'number') {
    yield number(finite(value));
  } else {
    yield JSON.stringify(value);
  }
}

// A typed array as a JSON array, 4,096 values a piece; `text`: a value's JSON text.
function* typedArray(a, text) {
  const STEP = 4096;
  if (!a.length) {
    yield '[]';
    return;
  }
  for (let i = 0; i < a.length; i += STEP) {
    const end = Math.min(a.length, i + STEP);
    let s = i ? ',' : '[';
    for (let j = i; j < end; j++) s += (j > i ? ',' : '') + text(a[j]);
    yield end === a.length ? `${s}]` : s;
  }
}

// Writes the JSON of `value` and a newline to a Node stream (process.stdout or a file
// stream) in pieces of about 1 MB, waiting for 'drain' when the stream asks.
export async function writeJSON(value, stream) {
  let buffer = '';
  const flush = async () => {
    const ok = stream.write(buffer);
    buffer = '';
    if (!ok) await new Promise((resolve) => stream.once('drain', resolve));
  };
  for (const piece of jsonPieces(value)) {
    buffer += piece;
    if (buffer.length >= 1 << 20) await flush();
  }
  buffer += '\n';
  await flush();
}
