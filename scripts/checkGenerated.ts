// Fails when generated/ does not match what openapi.yaml generates. It regenerates in place (so
// a developer's next step is only to commit) and compares a digest of every file before/after.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const dir = path.resolve('generated');
const digest = (): string => {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else hash.update(path.relative(dir, full)).update('\0').update(fs.readFileSync(full)).update('\0');
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return hash.digest('hex');
};

const before = digest();
execFileSync(process.execPath, [path.resolve('node_modules/@hey-api/openapi-ts/bin/run.js')], { stdio: 'ignore' });
if (digest() !== before) {
  console.error('generated/ was stale: it has been regenerated from openapi.yaml; review and commit it.');
  process.exit(1);
}
console.log('generated/ is up to date with openapi.yaml');
