#!/usr/bin/env node
// Builds k8s-join into one executable that needs no Node on the worker: esbuild bundles the agent
// (and its dependencies) into one CommonJS file, Node's single-executable-application support turns
// it into a blob, and postject injects the blob into a copy of this Node binary.
// Output: packages/agent/dist/k8s-join-linux-<arch> (and a stable symlink packages/agent/dist/k8s-join).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const top = new URL('..', import.meta.url).pathname;
const work = join(top, '.cache', 'sea');
const outDir = join(top, 'packages', 'agent', 'dist');
const output = join(outDir, `k8s-join-linux-${process.arch}`);
mkdirSync(work, { recursive: true });
mkdirSync(outDir, { recursive: true });

const started = Date.now();
await build({
  entryPoints: [join(top, 'packages', 'agent', 'src', 'bin', 'k8s-join.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: join(work, 'k8s-join.cjs'),
  logLevel: 'warning',
});
// The shebang would be a syntax error inside the SEA's CommonJS wrapper.
const bundle = join(work, 'k8s-join.cjs');
writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/^#!.*\n/, ''));
writeFileSync(
  join(work, 'sea-config.json'),
  JSON.stringify({ main: bundle, output: join(work, 'k8s-join.blob'), disableExperimentalSEAWarning: true }),
);
execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], {
  stdio: 'ignore',
});
rmSync(output, { force: true });
copyFileSync(process.execPath, output);
chmodSync(output, 0o755);
execFileSync(
  process.execPath,
  [
    join(top, 'node_modules', 'postject', 'dist', 'cli.js'),
    output,
    'NODE_SEA_BLOB',
    join(work, 'k8s-join.blob'),
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ],
  // postject warns about ELF note sections of Node's binary on every run; its stderr is shown only
  // if it fails (execFileSync then throws with it).
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
const link = join(outDir, 'k8s-join');
rmSync(link, { force: true });
symlinkSync(`k8s-join-linux-${process.arch}`, link);
const sha256 = createHash('sha256').update(readFileSync(output)).digest('hex');
writeFileSync(`${output}.sha256`, `${sha256}  k8s-join-linux-${process.arch}\n`);
const mib = (statSync(output).size / 1048576).toFixed(1);
console.log(
  `build:agent: ${output} (${mib} MiB, sha256 ${sha256.slice(0, 16)}…) in ${Date.now() - started} ms`,
);
