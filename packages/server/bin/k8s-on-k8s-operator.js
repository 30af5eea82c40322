#!/usr/bin/env node
// The `k8s-on-k8s-operator` command as npm links it (node_modules/.bin, npx, npm install -g): a committed file,
// because npm links only bins whose files exist at install time, and dist/ is built after that.
import { existsSync } from 'node:fs';

const program = new URL('../dist/src/bin/k8s-on-k8s-operator.js', import.meta.url);
if (!existsSync(program)) {
  console.error('k8s-on-k8s-operator is not built yet: run `npm run build` in the repository first');
  process.exit(1);
}
await import(program.href);
