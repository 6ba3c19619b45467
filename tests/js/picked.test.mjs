// Files picked in a browser (several files, a folder, a dropped folder): which one is the
// model, and which picked file each external data location of the model names
// (web/src/picked.js). Worked cases; the app's Chromium test (bigapp.test.mjs) opens real
// models through the same rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findExternal, modelCandidates, pickedEntries } from '../../web/src/picked.js';
import { QuantLensError } from '../../web/src/errors.js';

const file = (name, relative = '') => {
  const f = new Blob([name]);
  Object.defineProperty(f, 'name', { value: name });
  Object.defineProperty(f, 'webkitRelativePath', { value: relative });
  return f;
};

test('entries carry the folder path a folder pick gives, else the file name', () => {
  const e = pickedEntries([file('a.onnx', 'llm/a.onnx'), file('b.data'), { file: file('c.bin'), path: 'llm/w/c.bin' }]);
  assert.deepEqual(
    e.map((x) => x.path),
    ['llm/a.onnx', 'b.data', 'llm/w/c.bin'],
  );
  assert.ok(e.every((x) => x.file instanceof Blob));
  // Windows separators and leading slashes of dropped entries are normalised.
  assert.deepEqual(
    pickedEntries([{ file: file('x.onnx'), path: '/top\\sub\\x.onnx' }]).map((x) => x.path),
    ['top/sub/x.onnx'],
  );
});

test('the ONNX files among the picked ones, shallowest first, then by path', () => {
  const e = pickedEntries([
    file('z.onnx.data', 'm/z.onnx.data'),
    file('deep.onnx', 'm/sub/deep.onnx'),
    file('Z.ONNX', 'm/Z.ONNX'),
    file('a.onnx', 'm/a.onnx'),
  ]);
  assert.deepEqual(
    modelCandidates(e).map((x) => x.path),
    ['m/Z.ONNX', 'm/a.onnx', 'm/sub/deep.onnx'],
  );
  assert.deepEqual(modelCandidates(pickedEntries([file('w.data')])), []);
});

test('locations resolve against the model folder by relative path', () => {
  const e = pickedEntries([
    file('m.onnx', 'top/llm/m.onnx'),
    file('m.onnx.data', 'top/llm/m.onnx.data'),
    file('x.bin', 'top/llm/weights/x.bin'),
    file('x.bin', 'top/other/x.bin'),
    file('m.onnx.data', 'top/m.onnx.data'),
  ]);
  const model = e[0];
  assert.equal(findExternal(e, model, 'm.onnx.data'), e[1]);
  assert.equal(findExternal(e, model, './m.onnx.data'), e[1]);
  assert.equal(findExternal(e, model, 'weights/x.bin'), e[2]);
  assert.equal(findExternal(e, model, 'weights//./x.bin'), e[2]);
  // In a folder pick the path must match: a file of the same name elsewhere is not it.
  assert.throws(
    () => findExternal(e, model, 'x.bin'),
    (err) =>
      err instanceof QuantLensError &&
      err.code === 'MISSING_EXTERNAL_DATA' &&
      /'x\.bin'/.test(err.message) &&
      /top\/llm\/x\.bin/.test(err.message) &&
      /pick the folder/.test(err.message),
  );
});

test("no '..' escapes and no absolute paths, whatever was picked", () => {
  const e = pickedEntries([file('m.onnx', 'top/llm/m.onnx'), file('s.data', 'top/s.data'), file('p', 'etc/p')]);
  for (const bad of ['../s.data', 'a/../../s.data', '/etc/p', 'C:/etc/p', 'C:\\etc\\p', '\\\\host\\share\\p', '..']) {
    assert.throws(
      () => findExternal(e, e[0], bad),
      (err) => err.code === 'UNSAFE_EXTERNAL_DATA' && err.message.includes(bad),
      bad,
    );
  }
});

test('files picked one by one (no folder): found by location, else by base name', () => {
  const e = pickedEntries([file('m.onnx'), file('m.onnx.data'), file('x.bin')]);
  assert.equal(findExternal(e, e[0], 'm.onnx.data'), e[1]);
  // exporters write locations such as "weights/x.bin": with no folder known, the base name
  assert.equal(findExternal(e, e[0], 'weights/x.bin'), e[2]);
  assert.throws(
    () => findExternal(e, e[0], 'm.onnx.data.2'),
    (err) => err.code === 'MISSING_EXTERNAL_DATA' && /'m\.onnx\.data\.2'/.test(err.message) && /select/.test(err.message),
  );
});
