import { createHash } from 'node:crypto';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import {
  createCertificateRequest,
  generateRsaKeyPair,
  parseKubeconfig,
  resolveKubeconfig,
} from '@k8s-on-k8s/shared';

// The fallback for machines where the kubelet cannot run: exactly what a kubelet does with
// --bootstrap-kubeconfig before it needs a container runtime (pkg/kubelet/certificate/bootstrap):
// a key, a CSR for signer kubernetes.io/kube-apiserver-client-kubelet as system:node:<name> in
// system:nodes, wait for the controller-manager's approval and signature, write the credentials
// where the kubelet keeps them, and register the Node with the new certificate.

/** Where the kubelet keeps what TLS bootstrap gets it (the agent's reset removes exactly these). */
export const KUBELET_CREDENTIAL_PATHS = Object.freeze({
  bootstrapKubeconfig: '/etc/kubernetes/bootstrap-kubelet.conf',
  kubeconfig: '/etc/kubernetes/kubelet.conf',
  pkiDir: '/var/lib/kubelet/pki',
});

/** What a TLS bootstrap did, with how long each step took. */
export interface TlsBootstrapResult {
  readonly csrName: string;
  readonly certificatePem: string;
  readonly csrApprovedMs: number;
  readonly nodeRegisteredMs: number;
}

/** The I/O a TLS bootstrap needs: the machine's files under `root`, a clock. */
export interface TlsBootstrapOptions {
  readonly nodeName: string;
  /** The worker's `/` (e.g. /proc/<pid>/root of its systemd). */
  readonly root: string;
  readonly bootstrapKubeconfigText: string;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function call(
  agent: Agent,
  url: string,
  method: 'GET' | 'POST',
  body?: unknown,
  token?: string,
): Promise<ApiAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const response = await request(url, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
    dispatcher: agent,
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: JSON.parse(text) as Record<string, unknown> };
}

/** Writes `text` with `mode` through a temp file and a rename, as the kubelet's cert store does. */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp`;
  await writeFile(temp, text, { mode });
  await rename(temp, path);
}

/**
 * Does a kubelet's TLS bootstrap with the bootstrap kubeconfig the agent wrote (its server is the
 * VIP, so the caller must run where the VIP and the forwarder are: the worker's network namespace),
 * then registers the Node with the certificate it got.
 */
export async function bootstrapKubeletCredentials(options: TlsBootstrapOptions): Promise<TlsBootstrapResult> {
  const now = options.now ?? Date.now;
  const start = now();
  const deadline = start + (options.timeoutMs ?? 120_000);
  const bootstrap = resolveKubeconfig(
    parseKubeconfig(options.bootstrapKubeconfigText, KUBELET_CREDENTIAL_PATHS.bootstrapKubeconfig),
  );
  if (bootstrap.token === undefined || bootstrap.caPem === undefined) {
    throw new Error(`${KUBELET_CREDENTIAL_PATHS.bootstrapKubeconfig} has no bootstrap token or CA`);
  }
  const server = bootstrap.server.replace(/\/$/, '');
  const keys = await generateRsaKeyPair();
  const csrPem = createCertificateRequest(keys, {
    commonName: `system:node:${options.nodeName}`,
    organizations: ['system:nodes'],
  });
  // The kubelet names its CSR after a digest of the request, so a retry finds the same object.
  const csrName = `node-csr-${createHash('sha256').update(csrPem).digest('base64url').slice(0, 43)}`;
  const bootstrapAgent = new Agent({ connect: { ca: bootstrap.caPem } });
  let certificatePem = '';
  try {
    const created = await call(
      bootstrapAgent,
      `${server}/apis/certificates.k8s.io/v1/certificatesigningrequests`,
      'POST',
      {
        apiVersion: 'certificates.k8s.io/v1',
        kind: 'CertificateSigningRequest',
        metadata: { name: csrName },
        spec: {
          request: Buffer.from(csrPem).toString('base64'),
          signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
          usages: ['digital signature', 'key encipherment', 'client auth'],
        },
      },
      bootstrap.token,
    );
    if (created.status !== 201) {
      throw new Error(`creating CSR ${csrName} answered ${created.status}: ${JSON.stringify(created.body)}`);
    }
    while (certificatePem === '') {
      const csr = await call(
        bootstrapAgent,
        `${server}/apis/certificates.k8s.io/v1/certificatesigningrequests/${csrName}`,
        'GET',
        undefined,
        bootstrap.token,
      );
      const status = (csr.body.status ?? {}) as { certificate?: string; conditions?: { type: string }[] };
      if (status.conditions?.some((c) => c.type === 'Denied' || c.type === 'Failed') === true) {
        throw new Error(`CSR ${csrName} was not approved: ${JSON.stringify(status.conditions)}`);
      }
      if (status.certificate !== undefined && status.certificate !== '') {
        certificatePem = Buffer.from(status.certificate, 'base64').toString('utf8');
      } else if (now() > deadline) {
        throw new Error(`CSR ${csrName} was neither approved nor signed in time`);
      } else {
        await sleep(250);
      }
    }
  } finally {
    await bootstrapAgent.close();
  }
  const csrApprovedMs = now() - start;

  // The kubelet's layout: a dated PEM with certificate and key, and a -current symlink to it.
  const { pkiDir, kubeconfig } = KUBELET_CREDENTIAL_PATHS;
  const dated = `kubelet-client-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}.pem`;
  await writeAtomically(
    join(options.root, pkiDir, dated),
    `${certificatePem.trimEnd()}\n${keys.privateKeyPem}`,
    0o600,
  );
  const current = join(options.root, pkiDir, 'kubelet-client-current.pem');
  await rm(current, { force: true });
  // Relative (the kubelet writes an absolute one), so it resolves from the machine via /proc/PID/root too.
  await symlink(dated, current);
  await writeAtomically(
    join(options.root, kubeconfig),
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: default-cluster',
      '  cluster:',
      `    certificate-authority-data: ${Buffer.from(bootstrap.caPem).toString('base64')}`,
      `    server: ${server}`,
      'contexts:',
      '- name: default-context',
      '  context: {cluster: default-cluster, namespace: default, user: default-auth}',
      'current-context: default-context',
      'users:',
      '- name: default-auth',
      '  user:',
      `    client-certificate: ${pkiDir}/kubelet-client-current.pem`,
      `    client-key: ${pkiDir}/kubelet-client-current.pem`,
      '',
    ].join('\n'),
    0o600,
  );

  const nodeAgent = new Agent({
    connect: { ca: bootstrap.caPem, cert: certificatePem, key: keys.privateKeyPem },
  });
  try {
    const registered = await call(nodeAgent, `${server}/api/v1/nodes`, 'POST', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: options.nodeName,
        labels: {
          'kubernetes.io/hostname': options.nodeName,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
        },
      },
    });
    if (registered.status !== 201 && registered.status !== 409) {
      throw new Error(
        `registering Node ${options.nodeName} answered ${registered.status}: ${JSON.stringify(registered.body)}`,
      );
    }
  } finally {
    await nodeAgent.close();
  }
  return { csrName, certificatePem, csrApprovedMs, nodeRegisteredMs: now() - start };
}
