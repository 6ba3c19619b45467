// Shared test helpers: where models are, running the CLI and the Python reference.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// ../shared/models beside the checkout; QL_SHARED_MODELS names another place (a git worktree's).
export const sharedModels = process.env.QL_SHARED_MODELS || path.resolve(root, '..', 'shared', 'models');
export const cli = path.join(root, 'web', 'cli', 'quantlens.js');

const list = (dir) =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.onnx'))
        .sort()
        .map((f) => path.join(dir, f))
    : [];

export function sharedModelFiles() {
  return [...list(path.join(sharedModels, 'pytorch')), ...list(path.join(sharedModels, 'tf'))];
}
export const fetchedModelFiles = () => list(path.join(root, 'models', 'fetched'));
export const generatedModelFiles = () => list(path.join(root, 'models', 'generated'));

// `env`: variables added to this process's environment for the child.
export function run(cmd, args, { input, timeout = 300000, cwd, env } = {}) {
  return new Promise((resolve) => {
    const options = { maxBuffer: 1 << 30, timeout, encoding: 'utf8', cwd, env: env ? { ...process.env, ...env } : undefined };
    const child = execFile(cmd, args, options, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

export const runCli = (args) => run(process.execPath, [cli, ...args]);
export const runReference = (model) => run('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'analyze_ref.py'), model]);

// A model with one weight layer the core analyses (Conv 'good_conv') and two weight nodes it
// cannot, which analyze() lists in `skipped`: a Conv whose weight has rank 2
// ('<conv> (Conv): convolution weight of rank 2') and a Gemm whose weight has rank 3
// ('<gemm> (Gemm): Gemm weight of rank 3'). The two node names are given (they may be hostile).
export function makeSkippedModel(file, { conv = 'bad_conv', gemm = 'bad_gemm' } = {}) {
  const py = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
out, conv, gemm = sys.argv[1:4]
rng = np.random.default_rng(3)
w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
w[5] *= 30
g = helper.make_graph(
  [helper.make_node('Conv', ['x', 'w'], ['h'], name='good_conv'),
   helper.make_node('Conv', ['x', 'w_rank2'], ['h2'], name=conv),
   helper.make_node('Flatten', ['h'], ['f'], name='flatten'),
   helper.make_node('Gemm', ['f', 'w_rank3'], ['y'], name=gemm)],
  'skipped_graph', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])],
  [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1]), helper.make_tensor_value_info('h2', TensorProto.FLOAT, [1])],
  [numpy_helper.from_array(w, 'w'), numpy_helper.from_array(rng.standard_normal((8, 27)).astype(np.float32), 'w_rank2'),
   numpy_helper.from_array(rng.standard_normal((2, 4, 8)).astype(np.float32), 'w_rank3')])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='quantlens-test')
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, out)
`;
  return run('/usr/bin/python3', ['-c', py, file, conv, gemm]);
}
