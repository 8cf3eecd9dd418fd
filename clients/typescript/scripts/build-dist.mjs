// Builds dist/ (the package's JavaScript and type declarations) with tsc, or
// (--check) builds into a scratch folder beside it and fails when the
// checked-in dist/ differs. dist/ is checked in so that the package installs
// in a project that has no TypeScript compiler (`npm install
// --install-links ./clients/typescript`, see the repository's README): npm
// runs no build step for it.
//
//   node scripts/build-dist.mjs          write dist/
//   node scripts/build-dist.mjs --check  exit 1 when dist/ is stale

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const tsc = createRequire(join(pkgDir, 'package.json')).resolve('typescript/bin/tsc');
// Same depth as dist/, so every relative path tsc writes is the same.
const outDir = join(pkgDir, check ? '.dist-check' : 'dist');

rmSync(outDir, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--outDir', outDir], { cwd: pkgDir, stdio: 'inherit' });
  if (!check) {
    console.log(`wrote ${relative(process.cwd(), outDir) || '.'}`);
    process.exit(0);
  }
  const files = (dir) =>
    existsSync(dir)
      ? readdirSync(dir, { recursive: true })
          .map(String)
          .filter((f) => statSync(join(dir, f)).isFile())
          .sort()
      : [];
  const dist = join(pkgDir, 'dist');
  const want = files(outDir);
  const have = new Set(files(dist));
  const stale = [];
  for (const f of want) {
    if (!have.has(f)) stale.push(`missing: dist/${f}`);
    else if (!readFileSync(join(outDir, f)).equals(readFileSync(join(dist, f)))) stale.push(`differs: dist/${f}`);
    have.delete(f);
  }
  for (const f of have) stale.push(`not built from src/ any more: dist/${f}`);
  if (stale.length > 0) {
    for (const s of stale) console.error(s);
    console.error('error: dist/ is stale. Run: npm run build (in clients/typescript) and commit dist/');
    process.exit(1);
  }
  console.log(`ok: dist/ matches a fresh build of src/ (${want.length} files)`);
} finally {
  if (check) rmSync(outDir, { recursive: true, force: true });
}
