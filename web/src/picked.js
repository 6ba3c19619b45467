// Files picked in a browser: several files from a file input, a folder (an input with
// `webkitdirectory`, whose files carry webkitRelativePath) or a folder dropped on the page
// (walked by the page, each file given with its path). Which of them are ONNX models, and
// which picked file an external data location of the model names: the location taken
// relative to the model's folder, under the rule the core and Node apply
// (onnx::checkExternalLocation): relative, no '..', no absolute or drive path. Files picked
// one by one carry no folder: a location is then found by its path, else by its base name
// (exporters write locations such as "weights/x.bin").
import { QuantLensError } from './errors.js';

const clean = (p) =>
  String(p)
    .replace(/\\/g, '/')
    .split('/')
    .filter((s) => s && s !== '.')
    .join('/');

/**
 * [File | {file, path}] -> [{file, path}]: `path` is the folder path a folder pick or drop
 * gives ('llm/model.onnx'), else the file's name.
 */
export function pickedEntries(files) {
  return [...files].map((f) => {
    if (f && f.file && typeof f.path === 'string') return { file: f.file, path: clean(f.path) };
    return { file: f, path: clean((f && f.webkitRelativePath) || (f && f.name) || '') };
  });
}

const baseName = (p) => p.slice(p.lastIndexOf('/') + 1);
const dirName = (p) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const depth = (p) => p.split('/').length;

/** The entries that are ONNX models (*.onnx), the shallowest first, then by path. */
export function modelCandidates(entries) {
  return entries
    .filter((e) => /\.onnx$/i.test(e.path))
    .sort((a, b) => depth(a.path) - depth(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The entry holding external data `location` of the model `model` (an entry), or a
 * QuantLensError: UNSAFE_EXTERNAL_DATA for a location outside the model's folder,
 * MISSING_EXTERNAL_DATA (saying what to pick) when no picked file is it.
 */
export function findExternal(entries, model, location) {
  const raw = String(location);
  const parts = raw.replace(/\\/g, '/').split('/');
  if (/^[/\\]/.test(raw) || /^[A-Za-z]:/.test(raw) || parts.includes('..') || raw.includes('\0')) {
    throw new QuantLensError(
      'UNSAFE_EXTERNAL_DATA',
      `external data location '${raw}' is outside the model's folder: external data must be a file inside the model's folder, so nothing was read`,
    );
  }
  const rel = clean(raw);
  const dir = dirName(model.path);
  const target = dir ? `${dir}/${rel}` : rel;
  const hit = entries.find((e) => e !== model && e.path === target);
  if (hit) return hit;
  const flat = !dir;
  if (flat) {
    const byName = entries.find((e) => e !== model && !e.path.includes('/') && e.path === baseName(rel));
    if (byName) return byName;
    throw new QuantLensError(
      'MISSING_EXTERNAL_DATA',
      `the model's weights are in '${raw}', which is not among the files picked: select ${baseName(model.path)} together with every data file it names, or pick the folder that holds them`,
    );
  }
  throw new QuantLensError(
    'MISSING_EXTERNAL_DATA',
    `the model's weights are in '${raw}' (${target} in the folder picked), which is not among the files picked: pick the folder that holds the model and its data files`,
  );
}

const isBlobLike = (x) => x && typeof x === 'object' && typeof x.slice === 'function' && typeof x.size === 'number';
const asBytes = (file) =>
  file instanceof ArrayBuffer ? new Uint8Array(file) : new Uint8Array(file.buffer, file.byteOffset, file.byteLength);

/**
 * analyze()'s and compare()'s `externalData` for a model picked with its data files: a
 * function (location, offset, length) => the bytes (a Blob slice, read into the heap
 * through one reused buffer by source.js, or a view of bytes given in memory), found by
 * findExternal. When every entry is a Blob (files picked or dropped), the function carries
 * `picked: {entries, model}` (plain, cloneable: Files cross to a worker without being
 * copied), from which a pool worker makes the same function (fromPicked).
 */
export function pickedExternalData(entries, model) {
  const read = async (location, offset, length) => {
    const file = findExternal(entries, model, location).file; // or MISSING/UNSAFE_EXTERNAL_DATA, saying what to pick
    if (file instanceof ArrayBuffer || ArrayBuffer.isView(file)) return asBytes(file).subarray(offset, offset + length);
    return file.slice(offset, offset + length);
  };
  if (entries.every((e) => isBlobLike(e.file))) read.picked = { entries, model: entries.indexOf(model) };
  return read;
}

/** pickedExternalData's function again, from its `picked` (in a pool worker). */
export function fromPicked({ entries, model }) {
  return pickedExternalData(entries, entries[model]);
}

/** The same, read synchronously (FileReaderSync, in a worker): what equalize reads. */
export function pickedExternalDataSync(entries, model) {
  return (location, offset, length) => {
    const file = findExternal(entries, model, location).file;
    if (file instanceof ArrayBuffer || ArrayBuffer.isView(file)) return asBytes(file).subarray(offset, offset + length);
    return new Uint8Array(new FileReaderSync().readAsArrayBuffer(file.slice(offset, offset + length)));
  };
}
