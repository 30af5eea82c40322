#!/usr/bin/env node
// The kubelet's TLS bootstrap without the kubelet (the end-to-end test's fallback): run it where the
// worker's VIP and forwarder are, `ip netns exec WORKER_NETNS node kubelet-tls-bootstrap.js --root
// /proc/PID/root --node-name NAME`; prints what it did as JSON.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KUBELET_CREDENTIAL_PATHS, bootstrapKubeletCredentials } from '../worker/kubelet-tls-bootstrap.js';

const { values } = parseArgs({
  options: { root: { type: 'string' }, 'node-name': { type: 'string' }, timeout: { type: 'string' } },
  strict: true,
});
const root = values.root;
const nodeName = values['node-name'];
if (root === undefined || nodeName === undefined) {
  console.error('Usage: kubelet-tls-bootstrap --root DIR --node-name NAME [--timeout SECONDS]');
  process.exit(2);
}
const bootstrapKubeconfigText = await readFile(
  join(root, KUBELET_CREDENTIAL_PATHS.bootstrapKubeconfig),
  'utf8',
);
const result = await bootstrapKubeletCredentials({
  root,
  nodeName,
  bootstrapKubeconfigText,
  timeoutMs: values.timeout === undefined ? undefined : Number(values.timeout) * 1000,
});
console.log(JSON.stringify(result));
