// npm run pack: builds @rst-auth/sdk and @rst-auth/cli (each package's prepack runs its build) and
// writes their tarballs to dist/packages/, replacing earlier ones. The SDK is packed first: the
// CLI's build type-checks against the SDK's built .d.ts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const PACKAGES_DIR = path.resolve('dist', 'packages');

fs.rmSync(PACKAGES_DIR, { recursive: true, force: true });
fs.mkdirSync(PACKAGES_DIR, { recursive: true });
const out = execFileSync(
  'npm',
  ['pack', '--workspace=@rst-auth/sdk', '--workspace=@rst-auth/cli', '--pack-destination', PACKAGES_DIR, '--json'],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
for (const p of JSON.parse(out) as { filename: string; size: number; unpackedSize: number; entryCount: number }[]) {
  console.log(
    `${path.relative('.', path.join(PACKAGES_DIR, p.filename))}: ${(p.size / 1024).toFixed(1)} kB packed, ${(p.unpackedSize / 1024).toFixed(1)} kB unpacked, ${p.entryCount} files`,
  );
}
