// Getting model bytes into the WASM heap with a single copy: a path is read
// straight into the heap (Node), a Blob/File in slices, bytes with one set().
import { QuantLensError } from './errors.js';

const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);
const SLICE = 16 << 20;

async function nodeModules() {
  const fsName = 'fs';
  const pathName = 'path';
  return { fs: await import(/* @vite-ignore */ fsName), path: await import(/* @vite-ignore */ pathName) };
}

export function heapAlloc(core, size) {
  const ptr = core._malloc(Math.max(1, size)) >>> 0;
  if (!ptr) {
    throw new QuantLensError('OUT_OF_MEMORY', `cannot hold ${size} bytes in the WebAssembly heap (4 GB at most)`);
  }
  return ptr;
}

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

const isBlob = (x) => x && typeof x === 'object' && typeof x.arrayBuffer === 'function' && typeof x.slice === 'function' && typeof x.size === 'number';

function checkAbort(signal) {
  if (signal && signal.aborted) throw new QuantLensError('ABORTED', 'cancelled');
}

// Copies `source` into a new heap buffer. Returns { ptr, size, name, dir }.
export async function readIntoHeap(core, source, { onProgress, signal } = {}) {
  const report = (done, total) => onProgress && onProgress({ phase: 'read', done, total });
  if (typeof source === 'string') {
    if (!isNode) throw new QuantLensError('INVALID_ARGUMENT', 'a path can only be read under Node; pass bytes or a File');
    const { fs, path } = await nodeModules();
    let fd;
    try {
      fd = fs.openSync(source, 'r');
    } catch (e) {
      throw new QuantLensError('IO_ERROR', `cannot open ${source}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { cause: e });
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (fs.fstatSync(fd).isDirectory()) throw new QuantLensError('IO_ERROR', `${source} is a directory, not an ONNX file`);
      const ptr = heapAlloc(core, size);
      try {
        let done = 0;
        while (done < size) {
          checkAbort(signal);
          const len = Math.min(SLICE, size - done);
          // HEAPU8 is re-read each time: a heap growth replaces the view.
          const n = fs.readSync(fd, core.HEAPU8, ptr + done, len, done);
          if (n <= 0) throw new QuantLensError('IO_ERROR', `${source}: file ended early at byte ${done}`);
          done += n;
          report(done, size);
        }
      } catch (e) {
        core._free(ptr);
        throw e;
      }
      return { ptr, size, name: path.basename(source), dir: path.dirname(source) };
    } finally {
      fs.closeSync(fd);
    }
  }
  const bytes = toBytes(source);
  if (bytes) {
    const ptr = heapAlloc(core, bytes.length);
    core.HEAPU8.set(bytes, ptr);
    report(bytes.length, bytes.length);
    return { ptr, size: bytes.length, name: 'model.onnx', dir: null };
  }
  if (isBlob(source)) {
    const size = source.size;
    const ptr = heapAlloc(core, size);
    try {
      for (let done = 0; done < size; done += SLICE) {
        checkAbort(signal);
        const chunk = new Uint8Array(await source.slice(done, Math.min(size, done + SLICE)).arrayBuffer());
        core.HEAPU8.set(chunk, ptr + done);
        report(Math.min(size, done + SLICE), size);
      }
    } catch (e) {
      core._free(ptr);
      throw e;
    }
    return { ptr, size, name: source.name || 'model.onnx', dir: null };
  }
  throw new QuantLensError('INVALID_ARGUMENT', 'source must be a path (Node), a Uint8Array/ArrayBuffer, or a Blob/File');
}

// Returns async (location, offset, length) => Uint8Array for external data.
// `externalData`: a function with that signature, or an object mapping
// location -> bytes | Blob | File. Under Node, a model read from a path also
// finds its external files beside it.
export function externalResolver(externalData, dir) {
  if (typeof externalData === 'function') return externalData;
  const map = externalData || {};
  return async (location, offset, length) => {
    const entry = map[location];
    if (entry !== undefined) {
      const bytes = toBytes(entry);
      if (bytes) {
        const end = length == null ? bytes.length : offset + length;
        if (end > bytes.length) throw new QuantLensError('MISSING_EXTERNAL_DATA', `external file '${location}' has ${bytes.length} bytes, the model needs bytes ${offset}..${end}`);
        return bytes.subarray(offset, end);
      }
      if (isBlob(entry)) {
        const end = length == null ? entry.size : offset + length;
        if (end > entry.size) throw new QuantLensError('MISSING_EXTERNAL_DATA', `external file '${location}' has ${entry.size} bytes, the model needs bytes ${offset}..${end}`);
        return new Uint8Array(await entry.slice(offset, end).arrayBuffer());
      }
    }
    if (dir != null && isNode) {
      // ONNX external locations are relative to the model; refuse anything that climbs out.
      if (location.startsWith('/') || location.split(/[\\/]/).includes('..')) {
        throw new QuantLensError('MISSING_EXTERNAL_DATA', `external data location '${location}' points outside the model's folder`);
      }
      const { fs, path } = await nodeModules();
      const file = path.join(dir, location);
      let fd;
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        throw new QuantLensError('MISSING_EXTERNAL_DATA', `external data file '${location}' not found beside the model`);
      }
      try {
        const size = fs.fstatSync(fd).size;
        const len = length == null ? size - offset : length;
        if (offset + len > size) throw new QuantLensError('MISSING_EXTERNAL_DATA', `external file '${location}' has ${size} bytes, the model needs bytes ${offset}..${offset + len}`);
        const buf = new Uint8Array(len);
        let done = 0;
        while (done < len) {
          const n = fs.readSync(fd, buf, done, len - done, offset + done);
          if (n <= 0) break;
          done += n;
        }
        return buf;
      } finally {
        fs.closeSync(fd);
      }
    }
    throw new QuantLensError('MISSING_EXTERNAL_DATA', `external data file '${location}' was not provided`);
  };
}
