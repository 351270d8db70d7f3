// npm run check:packages: packs both packages (npm run pack) and lints each tarball as a registry
// would serve it: publint (package.json fields, exports, files) with warnings as errors, and
// @arethetypeswrong/cli (do the published types resolve the way the JavaScript does). The packages
// are ESM-only, so attw's esm-only profile skips the CommonJS resolutions that do not apply.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

execFileSync('npm', ['run', '--silent', 'pack'], { stdio: 'inherit' });
const dir = path.resolve('dist', 'packages');
const tarballs = fs.readdirSync(dir).filter((f) => f.endsWith('.tgz'));
if (tarballs.length !== 2) throw new Error(`expected 2 tarballs in ${dir}, found: ${tarballs.join(', ') || 'none'}`);
let failed = 0;
for (const tarball of tarballs) {
  const file = path.join(dir, tarball);
  for (const [tool, args] of [
    ['publint', ['run', '--strict', file]],
    ['attw', ['--profile', 'esm-only', '--no-color', '--no-emoji', file]],
  ] as const) {
    try {
      execFileSync(tool, args, { stdio: 'inherit' });
    } catch {
      console.error(`${tool} failed on ${tarball}`);
      failed++;
    }
  }
}
if (failed) process.exit(1);
console.log(`publint and attw pass on ${tarballs.join(' and ')}`);
