// The app's Web Worker: parsing, analysis, equalization and comparison run here, so
// the page never freezes. Messages in: {cmd: 'init', wasm} once, then
// {id, cmd: 'analyze'|'equalize'|'compare', files: [File], other: [File], options}.
// Messages out: {id, type: 'progress', phase, done, total, layer} and
// {id, type: 'result', result} or {id, type: 'error', error: {code, message}}.
// Cancel is the page terminating this worker (it works even inside a long core call).
import { configureCore } from '../src/core.js';
import { analyze, equalize, compare } from '../src/index.js';

// The model is the .onnx among the files; the others are its external data, found by
// location or by base name (exporters write locations such as "weights/x.bin").
function externalOption(files) {
  const model = files.find((f) => /\.onnx$/i.test(f.name)) || files[0];
  const others = files.filter((f) => f !== model);
  const find = (location) => others.find((f) => f.name === location) || others.find((f) => f.name === location.split('/').pop());
  const externalData = async (location, offset, length) => {
    const file = find(location);
    if (!file) return null;  // reported as MISSING_EXTERNAL_DATA, naming the location
    return new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
  };
  return { model, externalData };
}

self.onmessage = async (event) => {
  const { id, cmd } = event.data;
  if (cmd === 'init') { configureCore({ wasmBinary: event.data.wasm }); return; }
  const onProgress = (p) => self.postMessage({ id, type: 'progress', ...p });
  try {
    let result;
    const a = externalOption(event.data.files);
    const options = { ...event.data.options, onProgress };
    if (cmd === 'analyze') {
      result = await analyze(a.model, { ...options, externalData: a.externalData });
    } else if (cmd === 'equalize') {
      result = await equalize(a.model, options);
    } else if (cmd === 'compare') {
      const b = externalOption(event.data.other);
      const [analysisB, comparison] = [await analyze(b.model, { onProgress, externalData: b.externalData }), await compare(a.model, b.model, options)];
      result = { analysisB, comparison };
    } else {
      throw Object.assign(new Error(`unknown command ${cmd}`), { code: 'INVALID_ARGUMENT' });
    }
    // The equalized model's bytes move to the page rather than being copied.
    const transfer = cmd === 'equalize' ? [result.bytes.buffer] : [];
    self.postMessage({ id, type: 'result', result }, transfer);
  } catch (e) {
    self.postMessage({ id, type: 'error', error: { code: e.code || 'INTERNAL', message: e.message || String(e) } });
  }
};
