#!/usr/bin/env node
// Runs every compiled test file with Node's test runner, so the summary line shows the counts.
// Unit tests (packages/*/dist/test) run first; integration and end-to-end tests (test/dist) need the
// kube binaries from `npm run kube:build` and root for network namespaces; `--unit` runs only the former.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const top = new URL('..', import.meta.url).pathname;
const unitOnly = process.argv.includes('--unit');

function findTests(dir) {
  let found = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return found;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found = found.concat(findTests(path));
    else if (name.endsWith('.test.js')) found.push(path);
  }
  return found;
}

const roots = ['packages/shared/dist/test', 'packages/server/dist/test', 'packages/agent/dist/test'];
if (!unitOnly) roots.push('test/dist');
// tsc -b never deletes outputs: a test file that was moved or removed leaves its old compiled copy in
// dist/. Only compiled tests whose TypeScript source still exists are run.
const hasSource = (file) => {
  const at = file.lastIndexOf('/dist/');
  return existsSync(`${file.slice(0, at)}/${file.slice(at + '/dist/'.length).replace(/\.js$/, '.ts')}`);
};
const compiled = roots.flatMap((root) => findTests(join(top, root))).sort();
const files = compiled.filter(hasSource);
for (const stale of compiled.filter((f) => !hasSource(f))) {
  console.log(`run-tests: skipping ${relative(top, stale)}: its source is gone (a stale build output)`);
}
if (files.length === 0) {
  console.error('run-tests: no compiled tests found; run `npm run build` first');
  process.exit(1);
}
console.log(`run-tests: ${files.length} test files`);
const result = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=1', ...files.map((f) => relative(top, f))],
  { cwd: top, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
