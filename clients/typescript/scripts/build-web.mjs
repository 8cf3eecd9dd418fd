// Bundles the SDK with the flatbuffers runtime into one browser ES module,
// web/demo/shardline.js, which the shardline binary embeds and serves (the
// demo page imports it; no CDN, no Node needed to build or run the server).
// The bundle is checked in; --check rebuilds it in memory and fails when the
// checked-in file differs, so an SDK change cannot ship with a stale bundle.
//
//   node scripts/build-web.mjs          write web/demo/shardline.js
//   node scripts/build-web.mjs --check  exit 1 when it is stale

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outFile = resolve(pkgDir, '../../web/demo/shardline.js');
const check = process.argv.includes('--check');
const pkg = JSON.parse(readFileSync(resolve(pkgDir, 'package.json'), 'utf8'));

const result = await esbuild.build({
  absWorkingDir: pkgDir,
  entryPoints: ['src/index.ts'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  charset: 'utf8',
  legalComments: 'inline',
  write: false,
  outfile: outFile,
  banner: {
    js: `// ${pkg.name} ${pkg.version} + flatbuffers ${pkg.dependencies.flatbuffers}, bundled for browsers.\n// Generated from clients/typescript by \`npm run build:web\`; do not edit.`,
  },
  logLevel: 'warning',
});
const fresh = result.outputFiles[0].contents;
const rel = relative(process.cwd(), outFile);

if (!check) {
  writeFileSync(outFile, fresh);
  console.log(`wrote ${rel} (${fresh.length} bytes)`);
  process.exit(0);
}
let current;
try {
  current = readFileSync(outFile);
} catch {
  current = null;
}
if (!current || !Buffer.from(fresh).equals(current)) {
  console.error(`stale: ${rel} ${current ? 'differs from' : 'is missing; it should be'} a fresh build of clients/typescript/src`);
  console.error('error: the browser bundle is stale. Run: npm run build:web (in clients/typescript) and commit the result');
  process.exit(1);
}
console.log(`ok: ${rel} matches a fresh build (${fresh.length} bytes)`);
