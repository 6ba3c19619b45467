// The saved report: one self-contained HTML file (code, styles and data inline) that
// opens offline and renders the same views as the app. No DOM and no engine here:
// the app (in the browser) and the CLI (in Node) both build the file with these.
//
// Data are stored compactly: the result objects as one JSON skeleton in which every
// typed array is replaced by {"$": type, "o": byteOffset, "n": length} into a single
// binary block, the whole base64-encoded into a <script type="application/octet-stream">.
//   bytes: "QLR1" | u32 LE skeleton length | skeleton (UTF-8 JSON) | pad to 8 | block
// Model strings live inside the base64 text, so nothing from the file is ever parsed
// as HTML; the page carries a Content-Security-Policy that forbids every request and
// runs only the one script whose SHA-256 it names.
import { fromBase64, toBase64 } from './base64.js';

export const REPORT_SCHEMA = 'quantlens.report/1';

const TYPES = { Float32Array, Float64Array, Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array };
const MAGIC = [0x51, 0x4c, 0x52, 0x31]; // "QLR1"
const align8 = (n) => (n + 7) & ~7;

// FNV-1a over the bytes: finds candidate duplicates (confirmed byte for byte).
function fingerprint(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${bytes.length}:${h >>> 0}`;
}
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// The packed data's layout: the skeleton (UTF-8 JSON) and each distinct typed array's
// place in the block after it.
function layoutData(data) {
  const arrays = [];
  const stored = new Map(); // fingerprint -> [[offset, bytes]]: equal arrays are stored once
  let blockSize = 0;
  const skeleton = JSON.stringify(data, function replacer(key, value) {
    const v = this[key]; // the raw value (JSON.stringify would have called toJSON)
    if (ArrayBuffer.isView(v) && TYPES[v.constructor.name] === v.constructor) {
      // Identical arrays share one place in the block (an equalization's "before" is
      // often the analysis itself: a layer with no BatchNorm to fold).
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      const key8 = fingerprint(bytes);
      const same = (stored.get(key8) || []).find(([, b]) => sameBytes(b, bytes));
      if (same) return { $: v.constructor.name, o: same[0], n: v.length };
      const o = blockSize;
      arrays.push([o, v]);
      stored.set(key8, [...(stored.get(key8) || []), [o, bytes]]);
      blockSize = align8(blockSize + v.byteLength);
      return { $: v.constructor.name, o, n: v.length };
    }
    if (typeof value === 'number' && !Number.isFinite(value)) return { $: 'num', v: String(value) };
    return value;
  });
  return { head: new TextEncoder().encode(skeleton), arrays, blockSize };
}

// Base64 of a stream of byte chunks, in pieces of about 1 MB of text: each piece but the
// last encodes a multiple of 3 bytes, so the pieces joined are the base64 of all the bytes.
function* base64Pieces(chunks) {
  const SIZE = 3 << 18; // 786,432 bytes: 1 MB of text
  const buf = new Uint8Array(SIZE);
  let n = 0;
  for (const c of chunks) {
    for (let at = 0; at < c.length;) {
      const k = Math.min(SIZE - n, c.length - at);
      buf.set(c.subarray(at, at + k), n);
      n += k;
      at += k;
      if (n === SIZE) {
        yield toBase64(buf);
        n = 0;
      }
    }
  }
  if (n) yield toBase64(buf.subarray(0, n));
}

/**
 * The packed data (the format above) as base64 text in pieces of about 1 MB, written
 * without the whole block or its text in memory at once (an LLM's report carries
 * hundreds of MB of per-channel arrays).
 */
export function* packedPieces(data) {
  const { head, arrays, blockSize } = layoutData(data);
  const start = align8(8 + head.length);
  function* chunks() {
    const top = new Uint8Array(start);
    top.set(MAGIC, 0);
    new DataView(top.buffer).setUint32(4, head.length, true);
    top.set(head, 8);
    yield top;
    let at = 0; // in the block
    for (const [o, v] of arrays) {
      if (o > at) yield new Uint8Array(o - at); // alignment zeros
      yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      at = o + v.byteLength;
    }
    if (blockSize > at) yield new Uint8Array(blockSize - at);
  }
  yield* base64Pieces(chunks());
}

export function packData(data) {
  return [...packedPieces(data)].join('');
}

export function unpackData(text) {
  const bytes = fromBase64(text.trim());
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error('not QuantLens report data');
  const headLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  if (8 + headLength > bytes.length) throw new Error('report data is truncated');
  const start = align8(8 + headLength);
  const block = bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + bytes.length);
  const skeleton = new TextDecoder().decode(bytes.subarray(8, 8 + headLength));
  return JSON.parse(skeleton, (key, value) => {
    if (value && typeof value === 'object' && typeof value.$ === 'string') {
      if (value.$ === 'num') return Number(value.v);
      const T = TYPES[value.$];
      if (T && Number.isInteger(value.o) && Number.isInteger(value.n)) return new T(block, value.o, value.n);
    }
    return value;
  });
}

async function sha256Base64(text) {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return toBase64(new Uint8Array(digest));
}

// Inline <script> text must not close its element early; "<\/" means the same in JS
// strings, templates and regular expressions, the only places a bundle can hold it.
export const scriptSafe = (js) => js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
const escapeText = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// The Content-Security-Policy of a saved report: no network, no frames, no plugins;
// only the named script runs; styles inline (the views carry their own).
export const reportPolicy = (hash) =>
  [
    "default-src 'none'",
    `script-src ${hash}`,
    "style-src 'unsafe-inline'",
    'img-src data: blob:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

// What a report carries: everything the views show, minus the equalized model's bytes (or Blob).
// compression is compressibility()'s result (the Compression tab), which holds no model bytes.
export function reportData({
  analysis,
  equalization = null,
  comparison = null,
  analysisB = null,
  compression = null,
  version = 'dev',
  savedAt = new Date().toISOString(),
}) {
  const data = { version, savedAt, analysis };
  if (equalization) {
    const { bytes, blob, dataBytes, dataBlob, ...eq } = equalization; // the written files stay out of the report
    data.equalization = eq;
  }
  if (comparison) Object.assign(data, { comparison, analysisB });
  if (compression) data.compression = compression; // compressibility(): curves and plans, no model bytes
  return data;
}

// The app's style sheet and main script, taken from the built page (web/dist/app/index.html).
export function appParts(html) {
  const css = /<style id="ql-style">([\s\S]*?)<\/style>/.exec(html);
  const script = /<script id="ql-main">([\s\S]*?)<\/script>/.exec(html);
  if (!css || !script) throw new Error('not a QuantLens app page');
  return { css: css[1], script: script[1] };
}

// The page both the app and a report are: a policy, a title, the style sheet, then
// the body's elements (already-safe HTML produced here and in tools/build-app.mjs).
export function pageHtml({ policy, title, generator, css, body }) {
  return `${pageOpen({ policy, title, generator, css })}${body.join('\n')}${PAGE_CLOSE}`;
}

// The page up to its body's first element, and after its last.
function pageOpen({ policy, title, generator, css }) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${escapeText(generator)}">
<title>${escapeText(title)}</title>
<style id="ql-style">${css.replace(/<\/style/gi, '<\\/style')}</style>
</head>
<body>
`;
}
const PAGE_CLOSE = `
</body>
</html>
`;

// SHA-256 of an inline script, as a CSP source ('sha256-...').
export const scriptHash = async (js) => `'sha256-${await sha256Base64(js)}'`;

/**
 * The report file. `css` and `script` are the app's own style sheet and main script
 * (the script renders the views from the data element when it finds one);
 * `data` is the object to show ({analysis, equalization?, comparison?, ...}).
 */
export async function reportHtml(options) {
  return [...(await reportPieces(options))].join('');
}

/**
 * The report file as pieces of text, in order (reportHtml's text joined): to be written to
 * a file or a Blob a piece at a time, never the whole text at once.
 */
export async function reportPieces({ css, script, data, title = 'QuantLens report' }) {
  const js = scriptSafe(script);
  const open = pageOpen({ policy: reportPolicy(await scriptHash(js)), title, generator: 'QuantLens', css });
  return (function* pieces() {
    yield `${open}<script id="ql-data" type="application/octet-stream">`;
    yield* packedPieces({ schema: REPORT_SCHEMA, ...data });
    yield `</script>\n<script id="ql-main">${js}</script>${PAGE_CLOSE}`;
  })();
}
