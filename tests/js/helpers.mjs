// Shared test helpers: where models are, running the CLI and the Python reference.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedModels = path.resolve(root, '..', 'shared', 'models');
export const cli = path.join(root, 'web', 'cli', 'quantlens.js');

const list = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort().map((f) => path.join(dir, f)) : []);

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

