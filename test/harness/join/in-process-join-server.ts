import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubernetesObjectApi } from '@kubernetes/client-node';
import { issueCertificate, renderKubeconfig, type CertifiedKeyPair } from '@k8s-on-k8s/shared';
import {
  parseJoinServerFlags,
  renderJoinServerRbac,
  startJoinServer,
  type RunningJoinServer,
  type StartJoinServerOptions,
} from '@k8s-on-k8s/server';
import type { LocalKubeCluster } from '../kube/local-kube-cluster.js';

// Shared set-up of the join-server integration tests: the join server's RBAC applied to a real
// apiserver, a serving certificate and a least-privilege client certificate (CN k8s-join-server,
// no groups) from the cluster CA, and the files and flags to start the server with.

/** The files a join server is started with, and its base flags. */
export interface JoinServerFiles {
  readonly dir: string;
  readonly serving: CertifiedKeyPair;
  readonly kubeconfigPath: string;
  /** --tls-cert, --tls-key, --ca-cert, --kubeconfig, --listen 127.0.0.1:0, --upstream. */
  readonly baseFlags: readonly string[];
}

/** Applies exactly what renderJoinServerRbac() renders, as the cluster admin. */
export async function applyJoinServerRbac(cp: LocalKubeCluster): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(cp.kubeConfig());
  for (const object of renderJoinServerRbac()) {
    await api.create(object);
  }
}

/** Writes certificates and a least-privilege kubeconfig for a join server into `dir`. */
export async function prepareJoinServerFiles(cp: LocalKubeCluster, dir: string): Promise<JoinServerFiles> {
  await mkdir(dir, { recursive: true });
  const [serving, client] = await Promise.all([
    issueCertificate(cp.ca, {
      commonName: 'k8s-join-server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    }),
    // No organizations: the identity has only what the join server's RBAC grants it.
    issueCertificate(cp.ca, { commonName: 'k8s-join-server', usage: 'client' }),
  ]);
  const files = {
    cert: join(dir, 'tls.crt'),
    key: join(dir, 'tls.key'),
    ca: join(dir, 'ca.crt'),
    kubeconfig: join(dir, 'join-server.kubeconfig'),
  };
  await writeFile(files.cert, serving.certPem);
  await writeFile(files.key, serving.keyPem, { mode: 0o600 });
  await writeFile(files.ca, cp.ca.certPem);
  await writeFile(
    files.kubeconfig,
    renderKubeconfig({
      clusterName: cp.name,
      server: cp.url,
      caPem: cp.ca.certPem,
      userName: 'k8s-join-server',
      credentials: { clientCertPem: client.certPem, clientKeyPem: client.keyPem },
    }),
    { mode: 0o600 },
  );
  return {
    dir,
    serving,
    kubeconfigPath: files.kubeconfig,
    baseFlags: [
      '--tls-cert',
      files.cert,
      '--tls-key',
      files.key,
      '--ca-cert',
      files.ca,
      '--kubeconfig',
      files.kubeconfig,
      '--listen',
      '127.0.0.1:0',
      '--upstream',
      new URL(cp.url).host,
    ],
  };
}

/** A join server started in this process, with its log lines captured. */
export interface InProcessJoinServer extends RunningJoinServer {
  readonly logs: string[];
}

/** Starts a join server in-process from real flags, on 127.0.0.1:0. */
export async function startInProcessJoinServer(
  flags: readonly string[],
  options: Omit<StartJoinServerOptions, 'logDestination'> = {},
): Promise<InProcessJoinServer> {
  const { readFile } = await import('node:fs/promises');
  const config = await parseJoinServerFlags(flags, (path) => readFile(path, 'utf8'));
  if (config === 'help') throw new Error('unexpected --help');
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  const running = await startJoinServer(config, { ...options, logDestination: destination });
  return Object.assign(running, { logs });
}
