// Getting model bytes into the WASM heap.
//  - Streaming (a path under Node, a File/Blob in a worker): the core reads the
//    model's structure through a synchronous reader (onnx::skimModel) and large
//    weights arrive later a piece at a time, read straight into one reused heap buffer.
//  - Whole (bytes, or a Blob where synchronous reads are impossible): one copy of
//    the file in the heap.
import { isCoreError } from './core.js';
import { QuantLensError } from './errors.js';
import { isNode, nodeImport } from './node.js';

const SLICE = 16 << 20;
// Measured in a Chromium worker on a 553 MB File: 64 MB synchronous slices read it in
// 2.4 s, 4 MB slices in 4.3 s, 16 MB asynchronous slices in 3.7 s.
const BLOB_SLICE = 64 << 20;

async function nodeModules() {
  return { fs: await nodeImport('fs'), path: await nodeImport('path') };
}

// The core's allocateLarge (common/alloc.hpp): plain malloc cannot take 2 GiB or more at once.
export function heapAlloc(core, size) {
  const ptr = core._ql_alloc_large(Math.max(1, size)) >>> 0;
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

const isBlob = (x) =>
  x &&
  typeof x === 'object' &&
  typeof x.arrayBuffer === 'function' &&
  typeof x.slice === 'function' &&
  typeof x.size === 'number';

// Reading a Blob into the heap through one reused buffer: a BYOB reader of Blob.stream()
// fills STREAM_BUFFER bytes at a time (the browser hands a few hundred kB per read) and each
// fill is copied into the heap. FileReaderSync and Blob.arrayBuffer() make a fresh
// ArrayBuffer as large as the read instead, which a worker busy in the core seldom collects:
// measured in Chromium on VGG-16 (553 MB, picked as a File), the page's process kept about
// 490 MB of them until a forced GC. The buffer is taken while a read runs (a read running at
// the same time makes its own) and given back when it ends.
const STREAM_BUFFER = 4 << 20;
let streamBuffer = null;

// Bytes [offset, offset + length) of `blob` into the heap at `ptr`; returns how many were
// read (fewer: the blob ended), or -1 where Blob.stream() has no BYOB reader (nothing read).
async function streamBlobInto(core, blob, offset, length, ptr) {
  if (typeof blob.stream !== 'function') return -1;
  let reader;
  try {
    reader = blob
      .slice(offset, offset + length)
      .stream()
      .getReader({ mode: 'byob' });
  } catch {
    return -1;
  }
  let buffer = streamBuffer || new ArrayBuffer(STREAM_BUFFER);
  streamBuffer = null;
  let done = 0;
  try {
    while (done < length) {
      const { value, done: end } = await reader.read(new Uint8Array(buffer, 0, Math.min(buffer.byteLength, length - done)));
      buffer = value ? value.buffer : null; // the read moved the buffer: the one it returns is ours again
      if (end || !value) break;
      // HEAPU8 is re-read each time: a heap growth replaces the view.
      core.HEAPU8.set(value, ptr + done);
      done += value.length;
    }
  } finally {
    reader.cancel().catch(() => {});
    if (buffer && buffer.byteLength === STREAM_BUFFER) streamBuffer = buffer;
  }
  return done;
}

export function checkAbort(signal) {
  if (signal && signal.aborted) throw new QuantLensError('ABORTED', 'cancelled');
}

// Reads [offset, offset + length) of an open Node file straight into the heap.
function readFdInto(fs, core, fd, offset, length, ptr) {
  let done = 0;
  while (done < length) {
    // HEAPU8 is re-read each time: a heap growth replaces the view.
    const n = fs.readSync(fd, core.HEAPU8, ptr + done, Math.min(SLICE, length - done), offset + done);
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

// The core holds the structure of a model file in a WebAssembly heap buffer at the file's
// offsets (its weights stay in the file, untouched pages of the buffer cost no memory).
// The heap of wasm32 ends at 4 GiB and also holds the graph and the buffers weights are
// read into, so a model file must be under 3.5 GiB; its external data files have no such
// limit. (A protobuf message is limited to 2 GiB by most ONNX tools anyway.)
export const MAX_MODEL_FILE = 3.5 * 2 ** 30;
function checkModelSize(size, name) {
  if (size >= MAX_MODEL_FILE)
    throw new QuantLensError(
      'UNSUPPORTED',
      `${name} is ${(size / 2 ** 30).toFixed(1)} GiB: a model file must be under 3.5 GiB here (the WebAssembly heap ends at 4 GiB); save the model with its weights in external data files (onnx.save_model(model, path, save_as_external_data=True)) and open it with them`,
    );
}

/**
 * Opens `source` for reading. Returns { size, name, dir, sync, readSync?(offset, length, ptr),
 * readInto(offset, length, ptr): Promise<void>, changed?(), close() }; `sync` says whether the
 * core may read it synchronously (streaming mode); `changed` (a path) whether the file was
 * rewritten since it was opened.
 */
export async function openSource(core, source) {
  if (typeof source === 'string') {
    if (!isNode) throw new QuantLensError('INVALID_ARGUMENT', 'a path can only be read under Node; pass bytes or a File');
    const { fs, path } = await nodeModules();
    let fd;
    try {
      fd = fs.openSync(source, 'r');
    } catch (e) {
      throw new QuantLensError('IO_ERROR', `cannot open ${source}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, {
        cause: e,
      });
    }
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory()) {
      fs.closeSync(fd);
      throw new QuantLensError('IO_ERROR', `${source} is a directory, not an ONNX file`);
    }
    try {
      checkModelSize(stat.size, path.basename(source));
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    const readSync = (offset, length, ptr) => readFdInto(fs, core, fd, offset, length, ptr);
    const stamp = stampOf(stat);
    return {
      size: stat.size,
      name: path.basename(source),
      dir: path.dirname(source),
      sync: true,
      readSync,
      readInto: async (offset, length, ptr) => {
        if (!readSync(offset, length, ptr))
          throw new QuantLensError('IO_ERROR', `${source}: file ended before byte ${offset + length}`);
      },
      // Whether the file was rewritten since it was opened (checkUnchanged).
      changed: () => stampOf(fs.fstatSync(fd)) !== stamp,
      close: () => fs.closeSync(fd),
    };
  }
  const bytes = toBytes(source);
  if (bytes) {
    return {
      size: bytes.length,
      name: 'model.onnx',
      dir: null,
      sync: true,
      readSync: (offset, length, ptr) => {
        core.HEAPU8.set(bytes.subarray(offset, offset + length), ptr);
        return true;
      },
      readInto: async (offset, length, ptr) => {
        core.HEAPU8.set(bytes.subarray(offset, offset + length), ptr);
      },
      close: () => {},
    };
  }
  if (isBlob(source)) {
    checkModelSize(source.size, source.name || 'the model file');
    // FileReaderSync exists in workers only: elsewhere the file is read whole, asynchronously.
    const FRS = typeof FileReaderSync === 'function' ? FileReaderSync : null;
    const readInto = async (offset, length, ptr) => {
      const streamed = await streamBlobInto(core, source, offset, length, ptr);
      if (streamed === length) return;
      if (streamed >= 0)
        throw new QuantLensError(
          'IO_ERROR',
          `${source.name || 'file'}: could not read bytes ${offset + streamed}..${offset + length}`,
        );
      if (FRS) {
        // in a worker: synchronous reads in large slices are the fastest way in Chromium
        for (let done = 0; done < length; done += BLOB_SLICE) {
          const n = Math.min(BLOB_SLICE, length - done);
          const chunk = new Uint8Array(new FRS().readAsArrayBuffer(source.slice(offset + done, offset + done + n)));
          if (chunk.length !== n)
            throw new QuantLensError(
              'IO_ERROR',
              `${source.name || 'file'}: could not read bytes ${offset + done}..${offset + done + n}`,
            );
          core.HEAPU8.set(chunk, ptr + done);
        }
        return;
      }
      for (let done = 0; done < length; done += SLICE) {
        const end = Math.min(length, done + SLICE);
        const chunk = new Uint8Array(await source.slice(offset + done, offset + end).arrayBuffer());
        if (chunk.length !== end - done)
          throw new QuantLensError(
            'IO_ERROR',
            `${source.name || 'file'}: could not read bytes ${offset + done}..${offset + end}`,
          );
        core.HEAPU8.set(chunk, ptr + done);
      }
    };
    return {
      size: source.size,
      name: source.name || 'model.onnx',
      dir: null,
      sync: !!FRS,
      slowRead: true,
      // In slices: the core may ask for the rest of a file at once (a skim that found no
      // structure), and Chromium cannot read 2 GB into one ArrayBuffer.
      readSync:
        FRS &&
        ((offset, length, ptr) => {
          for (let done = 0; done < length; done += BLOB_SLICE) {
            const n = Math.min(BLOB_SLICE, length - done);
            const chunk = new Uint8Array(new FRS().readAsArrayBuffer(source.slice(offset + done, offset + done + n)));
            if (chunk.length !== n) return false;
            core.HEAPU8.set(chunk, ptr + done);
          }
          return true;
        }),
      readInto,
      close: () => {},
    };
  }
  throw new QuantLensError('INVALID_ARGUMENT', 'source must be a path (Node), a Uint8Array/ArrayBuffer, or a Blob/File');
}

/**
 * The synchronous reader the core's streamed entry points call, (offset, length, heapPointer)
 * => boolean, over an open source. It never lets an exception unwind through the core's
 * frames: a failed or short read returns false and keeps the error, which `check(made)`
 * throws (as an IO_ERROR naming the file) after the core returns, releasing `made`, the
 * core object it returned. Progress: { phase: 'read', done: bytes reached, total }.
 */
export function coreReader(src, onProgress) {
  let reached = 0;
  const reader = {
    error: null,
    read: (offset, length, ptr) => {
      try {
        const ok = src.readSync(offset, length, ptr);
        // Reads of a file whose size is known do not come up short: the file changed.
        if (!ok && !reader.error)
          reader.error = new QuantLensError('IO_ERROR', `${src.name}: could not read bytes ${offset}..${offset + length}`);
        reached = Math.max(reached, offset + length);
        if (onProgress) onProgress({ phase: 'read', done: reached, total: src.size });
        return ok;
      } catch (e) {
        reader.error = e;
        return false;
      }
    },
    check(made) {
      const e = reader.error;
      if (!e) return;
      if (made && !isCoreError(made)) made.delete();
      throw e instanceof QuantLensError ? e : new QuantLensError('IO_ERROR', `${src.name}: ${e.message}`, { cause: e });
    },
  };
  return reader;
}

// Copies the whole source into a new heap buffer (the core takes ownership).
export async function readWholeIntoHeap(core, src, { onProgress, signal } = {}) {
  const ptr = heapAlloc(core, src.size);
  try {
    for (let done = 0; done < src.size; done += SLICE) {
      checkAbort(signal);
      const n = Math.min(SLICE, src.size - done);
      await src.readInto(done, n, ptr + done);
      if (onProgress) onProgress({ phase: 'read', done: done + n, total: src.size });
    }
  } catch (e) {
    core._free(ptr);
    throw e;
  }
  return ptr;
}

/**
 * External data: readInto(ref, offset, length, ptr) fills the heap with those bytes of
 * the external file. `ref` is the core's externalRef ({ location, path }), already held
 * to the location rule (onnx::checkExternalLocation: relative, inside the model's
 * folder); a plain string is taken as both. `externalData`: an object mapping location
 * -> bytes | Blob | File, or an async (location, offset, length) => Uint8Array: then
 * only what the caller handed over is readable. Under Node, a model read from a path
 * also finds its external files beside it: the normalised path is opened, and only if
 * its real path (symbolic links resolved) is a regular file inside the model's real folder.
 */
export function externalFiles(core, externalData, dir) {
  const map = typeof externalData === 'function' ? null : externalData || {};
  const fds = new Map();
  const stamps = new Map();
  let nodeFs = null; // once a file beside the model is read
  const missing = (msg) => new QuantLensError('MISSING_EXTERNAL_DATA', msg);
  const range = (location, size, offset, length) => {
    if (offset + length > size)
      throw missing(`external file '${location}' has ${size} bytes, the model needs bytes ${offset}..${offset + length}`);
  };
  const own = (key) => (map && Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined);
  // Whether bytes [offset, offset + length) of a Blob reached the heap.
  const blobInto = async (blob, offset, length, ptr) => {
    const streamed = await streamBlobInto(core, blob, offset, length, ptr);
    if (streamed >= 0) return streamed === length;
    const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    if (bytes.length !== length) return false;
    core.HEAPU8.set(bytes, ptr);
    return true;
  };
  return {
    async readInto(ref, offset, length, ptr) {
      const { location, path: rel = location } = typeof ref === 'string' ? { location: ref } : ref;
      if (typeof externalData === 'function') {
        const answer = await externalData(location, offset, length);
        if (isBlob(answer) && answer.size === length) {
          // a Blob of those bytes: read into the heap through the reused buffer
          if (await blobInto(answer, 0, length, ptr)) return;
          throw new QuantLensError(
            'IO_ERROR',
            `external data '${location}' bytes ${offset}..${offset + length} could not be read`,
          );
        }
        const got = toBytes(answer);
        if (!got || got.length !== length)
          throw missing(`external data '${location}' bytes ${offset}..${offset + length} were not provided`);
        core.HEAPU8.set(got, ptr);
        return;
      }
      const entry = own(location) ?? own(rel);
      if (entry !== undefined) {
        const bytes = toBytes(entry);
        if (bytes) {
          range(location, bytes.length, offset, length);
          core.HEAPU8.set(bytes.subarray(offset, offset + length), ptr);
          return;
        }
        if (isBlob(entry)) {
          range(location, entry.size, offset, length);
          if (await blobInto(entry, offset, length, ptr)) return;
          throw new QuantLensError(
            'IO_ERROR',
            `external file '${location}': bytes ${offset}..${offset + length} could not be read`,
          );
        }
      }
      if (dir != null && isNode) {
        const { fs, path } = await nodeModules();
        nodeFs = fs;
        readBesideInto({ fs, path, core, fds, stamps, dir }, location, rel, offset, length, ptr);
        return;
      }
      throw missing(`external data file '${location}' was not provided`);
    },
    // The location of an external file read here that was rewritten since it was opened, or null.
    changed: () => changedFile(nodeFs, fds, stamps),
    async close() {
      if (!fds.size) return;
      const { fs } = await nodeModules();
      for (const fd of fds.values()) fs.closeSync(fd);
    },
  };
}

const missingData = (msg) => new QuantLensError('MISSING_EXTERNAL_DATA', msg);
const unsafeData = (msg) =>
  new QuantLensError(
    'UNSAFE_EXTERNAL_DATA',
    `${msg}: external data must be a file inside the model's folder, so nothing was read`,
  );

// What shows a file rewritten while it is read: its size and modification time. (A file
// replaced by a rename leaves the open descriptor on the old one, which stays as it was.)
const stampOf = (stat) => `${stat.size}:${stat.mtimeMs}`;

// The location of the first open file whose stamp changed, or null.
function changedFile(fs, fds, stamps) {
  if (!fs) return null;
  for (const [rel, fd] of fds) if (stampOf(fs.fstatSync(fd)) !== stamps.get(rel)) return rel;
  return null;
}

/**
 * Throws IO_ERROR when the model file (a path) or an external data file read beside it was
 * rewritten since it was opened: a weight read twice (the statistics' two passes, equalize's
 * copy) would mix two versions of the file.
 */
export function checkUnchanged(src, external) {
  const which = src && src.changed && src.changed() ? src.name : external && external.changed ? external.changed() : null;
  if (which)
    throw new QuantLensError(
      'IO_ERROR',
      `${which} was rewritten while it was read (its size or modification time changed): the results would mix two versions of it; run again once it is written`,
    );
}

// Node: reads [offset, offset + length) of the external file `rel` (normalised) beside the
// model in `dir` into the heap, synchronously; the file is opened once (kept in `fds`), and
// only if its real path (symbolic links resolved) is a regular file inside the model's real folder.
function readBesideInto({ fs, path, core, fds, stamps, dir }, location, rel, offset, length, ptr) {
  let fd = fds.get(rel);
  if (fd === undefined) {
    // The core refused absolute paths and '..' escapes; links are resolved here.
    if (path.isAbsolute(rel) || rel.split('/').includes('..') || rel.includes('\0')) {
      throw unsafeData(`external data location '${location}' is outside the model's folder`);
    }
    let real;
    let realDir;
    try {
      realDir = fs.realpathSync(dir);
      real = fs.realpathSync(path.join(dir, rel));
    } catch {
      throw missingData(`external data file '${location}' not found beside the model`);
    }
    const inside = path.relative(realDir, real);
    if (!inside || inside.startsWith('..') || path.isAbsolute(inside)) {
      throw unsafeData(
        `external data location '${location}' is a symbolic link that leads outside the model's folder (to ${real})`,
      );
    }
    try {
      fd = fs.openSync(real, 'r');
    } catch {
      throw missingData(`external data file '${location}' could not be opened`);
    }
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) {
      fs.closeSync(fd);
      throw unsafeData(`external data location '${location}' is not a regular file`);
    }
    fds.set(rel, fd);
    stamps.set(rel, stampOf(stat));
  }
  const size = fs.fstatSync(fd).size;
  if (offset + length > size)
    throw missingData(`external file '${location}' has ${size} bytes, the model needs bytes ${offset}..${offset + length}`);
  if (!readFdInto(fs, core, fd, offset, length, ptr)) throw missingData(`external file '${location}' ended early`);
}

/**
 * External data read synchronously, as the core's equalize reads it: `read(path, offset,
 * length, ptr)` fills the heap and returns '' or, when it cannot, why (and keeps the first
 * error, which `check(made)` throws once the core has returned, releasing `made`). `path` is
 * the location as the core normalised it. Sources as for externalFiles(): `externalData`
 * {location: bytes | Blob} (a Blob only where FileReaderSync exists: in a worker), or a
 * function (location, offset, length) => bytes that answers at once (a promise is refused:
 * UNSUPPORTED), else, under Node, the files beside a model read from a path (`dir`).
 */
export async function externalReaderSync(core, externalData, dir) {
  const node = dir != null && isNode ? await nodeModules() : null;
  const fds = new Map();
  const stamps = new Map();
  const map = externalData && typeof externalData === 'object' ? externalData : null;
  const own = (key) => (map && Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined);
  const FRS = typeof FileReaderSync === 'function' ? FileReaderSync : null;
  const reader = {
    error: null,
    read: (location, offset, length, ptr) => {
      try {
        let entry = own(location);
        if (typeof externalData === 'function') {
          // only a function that answers at once (the worker's, over the files picked)
          entry = externalData(location, offset, length);
          if (entry && typeof entry.then === 'function')
            throw new QuantLensError(
              'UNSUPPORTED',
              `equalize() reads external data synchronously: give externalData as {location: bytes | Blob}, or a function that returns the bytes, not a promise (needed: '${location}')`,
            );
          const got = toBytes(entry);
          if (!got || got.length !== length)
            throw missingData(`external data '${location}' bytes ${offset}..${offset + length} were not provided`);
          core.HEAPU8.set(got, ptr);
          return '';
        }
        const range = (size) => {
          if (offset + length > size)
            throw missingData(
              `external file '${location}' has ${size} bytes, the model needs bytes ${offset}..${offset + length}`,
            );
        };
        const bytes = entry !== undefined ? toBytes(entry) : null;
        if (bytes) {
          range(bytes.length);
          core.HEAPU8.set(bytes.subarray(offset, offset + length), ptr);
        } else if (entry !== undefined && isBlob(entry)) {
          if (!FRS)
            throw new QuantLensError(
              'UNSUPPORTED',
              `external data '${location}' is a Blob, which only a worker can read synchronously: equalize it in a worker (createWorkerClient)`,
            );
          range(entry.size);
          for (let done = 0; done < length; done += BLOB_SLICE) {
            const n = Math.min(BLOB_SLICE, length - done);
            core.HEAPU8.set(
              new Uint8Array(new FRS().readAsArrayBuffer(entry.slice(offset + done, offset + done + n))),
              ptr + done,
            );
          }
        } else if (node) {
          readBesideInto({ ...node, core, fds, stamps, dir }, location, location, offset, length, ptr);
        } else {
          throw missingData(`external data file '${location}' was not provided`);
        }
        return '';
      } catch (e) {
        const err =
          e instanceof QuantLensError
            ? e
            : new QuantLensError('IO_ERROR', `external data '${location}': ${e.message}`, { cause: e });
        if (!reader.error) reader.error = err;
        return err.message || 'could not be read';
      }
    },
    // The location of an external file read here that was rewritten since it was opened, or null.
    changed: () => changedFile(node && node.fs, fds, stamps),
    check(made) {
      if (!reader.error) return;
      if (made && !isCoreError(made)) made.delete();
      throw reader.error;
    },
    close() {
      if (node) for (const fd of fds.values()) node.fs.closeSync(fd);
      fds.clear();
    },
  };
  return reader;
}
