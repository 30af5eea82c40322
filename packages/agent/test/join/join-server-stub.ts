// A stand-in join server for the agent's join command: a real HTTPS server on 127.0.0.1:0 whose
// certificate chain comes from a real CA, answering POST /v1/join from a script of responses.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  caCertHash,
  createCertificateAuthority,
  issueCertificate,
  renderKubeconfig,
  type CertifiedKeyPair,
} from '@k8s-on-k8s/shared';
import type { JoinCommandDeps } from '../../src/join/join-command.js';
import { createNodeSystem } from '../../src/node/node-system.js';

export const TOKEN = 'abcdef.0123456789abcdef0123456789abcdef';

/** One scripted answer: a status, headers and a JSON body. */
export interface StubAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: unknown;
}

export interface JoinServerStub {
  readonly url: string;
  readonly pin: string;
  readonly ca: CertifiedKeyPair;
  /** How many join requests arrived. */
  readonly requests: () => number;
  stop(): Promise<void>;
}

/** Two CAs made once per test file: the cluster's and an impostor's. */
export async function createCas(): Promise<{ ca: CertifiedKeyPair; other: CertifiedKeyPair }> {
  const [ca, other] = await Promise.all([
    createCertificateAuthority('hosted-ca'),
    createCertificateAuthority('other-ca'),
  ]);
  return { ca, other };
}

/** A bundle as a correct join server answers it, for the CA `ca`; override any field. */
export function goodBundle(ca: CertifiedKeyPair, overrides: Record<string, unknown> = {}): unknown {
  const { endpoint: endpointOverride, ...rest } = overrides;
  const endpoint = (endpointOverride as string | undefined) ?? 'https://10.199.199.199:443';
  return {
    apiVersion: 'join.k8s-on-k8s.io/v1',
    kind: 'JoinBundle',
    nodeName: 'worker-1',
    caCert: ca.certPem,
    apiServer: { endpoint, upstreams: ['192.0.2.10:6443'] },
    bootstrapKubeconfig: renderKubeconfig({
      clusterName: 'kubernetes',
      server: endpoint,
      caPem: ca.certPem,
      userName: 'tls-bootstrap-token-user',
      credentials: { token: 'bbbbbb.0123456789abcdef' },
    }),
    bootstrapTokenExpiresAt: '2030-01-01T00:15:00Z',
    cluster: { dnsIP: '10.3.0.10', domain: 'cluster.local', kubernetesVersion: 'v1.37.2' },
    kubeletConfig: {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true } },
      authorization: { mode: 'Webhook' },
    },
    serverTime: new Date().toISOString(),
    ...rest,
  };
}

/** Starts the stub; the n-th join request (0-based) gets answers[min(n, last)]. */
export async function startJoinServerStub(
  ca: CertifiedKeyPair,
  answers: readonly StubAnswer[],
): Promise<JoinServerStub> {
  const serving = await issueCertificate(ca, {
    commonName: 'k8s-join-server',
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
  });
  let count = 0;
  const server = createServer({ cert: serving.certPem + ca.certPem, key: serving.keyPem }, (req, res) => {
    req.resume();
    const answer = answers[Math.min(count, answers.length - 1)];
    count++;
    res.writeHead(answer?.status ?? 500, { 'content-type': 'application/json', ...answer?.headers });
    res.end(JSON.stringify(answer?.body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    pin: caCertHash(ca.certPem),
    ca,
    requests: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** An error body as the join server writes it. */
export function errorAnswer(status: number, code: string, headers: Record<string, string> = {}): StubAnswer {
  return {
    status,
    headers,
    body: { apiVersion: 'join.k8s-on-k8s.io/v1', kind: 'Error', code, message: `${code} (stub)` },
  };
}

/** A temp root with a `systemctl` fixture first on PATH that records its arguments. */
export async function createJoinRoot(): Promise<{
  root: string;
  systemctlCalls: () => Promise<string[]>;
  cleanup: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'join-root-'));
  const root = join(dir, 'root');
  const bin = join(dir, 'bin');
  const log = join(dir, 'systemctl.log');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(root);
  await mkdir(bin);
  await writeFile(
    join(bin, 'systemctl'),
    `#!/bin/sh\necho "$*" >> '${log}'\n[ "$1" = is-active ] && exit 3\nexit 0\n`,
  );
  await chmod(join(bin, 'systemctl'), 0o755);
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath ?? ''}`;
  return {
    root,
    systemctlCalls: async () =>
      (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((line) => line !== ''),
    cleanup: async () => {
      process.env.PATH = oldPath;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The join command's dependencies over the real machine layer, with output collected. */
export function joinDeps(overrides: Partial<JoinCommandDeps> = {}): JoinCommandDeps & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    systemAt: createNodeSystem,
    env: {},
    out: (line) => lines.push(line),
    warn: (line) => lines.push(line),
    sleep: () => Promise.resolve(),
    selfCommand: ['/opt/bin/k8s-join'],
    readLocalFile: () => Promise.reject(new Error('no local files in this test')),
    ...overrides,
  };
}

/** The join command line against a stub, acting on `root`, not waiting for the kubelet. */
export function joinArgs(stub: JoinServerStub, root: string, extra: readonly string[] = []): string[] {
  return [
    '--server',
    stub.url,
    '--ca-cert-hash',
    stub.pin,
    '--token',
    TOKEN,
    '--node-name',
    'worker-1',
    '--root',
    root,
    '--ignore-preflight-errors',
    'all',
    '--timeout',
    '0s',
    ...extra,
  ];
}
