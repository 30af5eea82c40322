#!/usr/bin/env node
// Builds k8s-join into one executable that needs no Node on the worker (scripts/lib/build-sea.mjs).
// Output: packages/agent/dist/k8s-join-linux-<arch> (and a stable symlink packages/agent/dist/k8s-join).
import { join } from 'node:path';
import { buildSingleExecutable } from './lib/build-sea.mjs';

const top = new URL('..', import.meta.url).pathname;
const started = Date.now();
const { output, sha256, bytes } = await buildSingleExecutable({
  entry: join(top, 'packages', 'agent', 'src', 'bin', 'k8s-join.ts'),
  name: 'k8s-join',
  outDir: join(top, 'packages', 'agent', 'dist'),
});
console.log(
  `build:agent: ${output} (${(bytes / 1048576).toFixed(1)} MiB, sha256 ${sha256.slice(0, 16)}…) in ${Date.now() - started} ms`,
);
