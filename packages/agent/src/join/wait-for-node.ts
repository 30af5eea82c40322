import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { K8sOnK8sError, formatDuration, parseKubeconfig } from '@k8s-on-k8s/shared';
import { KUBELET_HEALTHZ_PORT, NODE_PATHS } from '../node/node-paths.js';
import type { NodeSystem } from '../node/node-system.js';

/** Progress output for long waits: one line per state change, not per poll. */
export type Progress = (line: string) => void;

/** Polls `probe` until it returns a value or `timeoutMs` passes; prints what it waits for. */
export async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  progress: Progress,
  probe: () => Promise<T | undefined>,
  intervalMs = 1000,
): Promise<T | undefined> {
  const start = Date.now();
  progress(`waiting for ${what} (up to ${Math.round(timeoutMs / 1000)}s)`);
  let lastReport = start;
  while (Date.now() - start < timeoutMs) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() - lastReport >= 15_000) {
      lastReport = Date.now();
      progress(`  still waiting for ${what} (${Math.round((Date.now() - start) / 1000)}s)`);
    }
    await sleep(intervalMs);
  }
  return undefined;
}

/** One GET to the kubelet's local healthz endpoint; true when it answers ok. */
export async function kubeletHealthy(): Promise<true | undefined> {
  const response = await request(`http://127.0.0.1:${KUBELET_HEALTHZ_PORT}/healthz`, {
    headersTimeout: 2000,
    bodyTimeout: 2000,
  });
  const body = await response.body.text();
  return response.statusCode === 200 && body.trim() === 'ok' ? true : undefined;
}

/**
 * Looks up this node's Node object with the kubelet's own credentials (the certificate it got by
 * TLS bootstrap, referenced from kubelet.conf), through the VIP and the forwarder.
 */
export async function nodeRegistered(system: NodeSystem, nodeName: string): Promise<true | undefined> {
  const text = await system.readText(NODE_PATHS.kubeletKubeconfig);
  if (text === undefined) return undefined;
  const config = parseKubeconfig(text, NODE_PATHS.kubeletKubeconfig);
  const cluster = config.clusters[0]?.cluster;
  const user = config.users[0]?.user;
  if (cluster === undefined || user === undefined) return undefined;
  const certPath = user['client-certificate'];
  const keyPath = user['client-key'];
  const ca =
    cluster['certificate-authority-data'] === undefined
      ? await system.readText(cluster['certificate-authority'] ?? NODE_PATHS.caCert)
      : Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8');
  const cert = certPath === undefined ? undefined : await system.readText(certPath);
  const key = keyPath === undefined ? undefined : await system.readText(keyPath);
  if (ca === undefined || cert === undefined || key === undefined) return undefined;
  const dispatcher = new Agent({ connect: { ca, cert, key, timeout: 3000 } });
  try {
    const response = await request(new URL(`/api/v1/nodes/${encodeURIComponent(nodeName)}`, cluster.server), {
      dispatcher,
      headersTimeout: 3000,
      bodyTimeout: 3000,
    });
    await response.body.text();
    return response.statusCode === 200 ? true : undefined;
  } finally {
    await dispatcher.close();
  }
}

/** How long to wait, and whether for the Node object too (--timeout, --wait). */
export interface NodeWait {
  readonly nodeName: string;
  readonly timeoutMs: number;
  readonly waitForNode: boolean;
}

/**
 * Waits for the kubelet's healthz, then (with --wait) for the Node to register; a timeout is an
 * error whose hint says where to look. `since` is when the units were started, for the report.
 */
export async function waitForJoinedNode(
  system: NodeSystem,
  wait: NodeWait,
  progress: Progress,
  since: number,
): Promise<void> {
  const healthy = await pollUntil('the kubelet to be healthy', wait.timeoutMs, progress, kubeletHealthy);
  if (healthy === undefined) {
    throw new K8sOnK8sError(
      'TIMEOUT',
      `the kubelet did not become healthy within ${formatDuration(wait.timeoutMs)}`,
      {
        hint: 'look at `journalctl -u kubelet -u k8s-join-forwarder`; the files and units are in place, so fixing the cause and waiting is enough',
      },
    );
  }
  progress(`[kubelet] healthy after ${formatDuration(Date.now() - since)}`);
  if (!wait.waitForNode) return;
  const registered = await pollUntil(`Node ${wait.nodeName} to register`, wait.timeoutMs, progress, () =>
    nodeRegistered(system, wait.nodeName),
  );
  if (registered === undefined) {
    throw new K8sOnK8sError(
      'TIMEOUT',
      `Node ${wait.nodeName} did not register within ${formatDuration(wait.timeoutMs)}`,
      {
        hint: 'look at `journalctl -u kubelet`: TLS bootstrap needs the CSR approved (kubectl get csr)',
      },
    );
  }
  progress(`[node] ${wait.nodeName} registered after ${formatDuration(Date.now() - since)}`);
}
