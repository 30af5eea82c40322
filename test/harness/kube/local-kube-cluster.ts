import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import {
  createCertificateAuthority,
  generateRsaKeyPair,
  issueCertificate,
  renderKubeconfig,
  type CertifiedKeyPair,
} from '@k8s-on-k8s/shared';
import { freePort } from '../net/free-port.js';
import { httpsGet } from '../net/https-get.js';
import { ChildProcessGroup } from '../process/child-process-group.js';
import { kubeBinary } from './kube-binaries.js';
import { uniqueTestResourceName } from '../process/test-resource-name.js';

/** What to start: etcd and kube-apiserver always; the controller-manager and scheduler on request. */
export interface LocalKubeClusterOptions {
  /** Used in temp-dir and cluster names, so two clusters in one test are told apart. */
  readonly name?: string;
  readonly controllerManager?: boolean;
  readonly scheduler?: boolean;
  /** Extra kube-apiserver flags, appended last so they win. */
  readonly apiserverArgs?: readonly string[];
  /** Extra kube-controller-manager flags, appended last. */
  readonly controllerManagerArgs?: readonly string[];
  readonly serviceClusterIpRange?: string;
  /** Extra IP SANs of the apiserver serving certificate, e.g. the worker VIP 10.199.199.199. */
  readonly apiserverIpSans?: readonly string[];
  /** How long to wait for /readyz before failing with the process logs. */
  readonly readyTimeoutMs?: number;
}

/** A running local cluster and how to reach it as cluster admin. */
export interface LocalKubeCluster {
  readonly name: string;
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  readonly ca: CertifiedKeyPair;
  readonly admin: CertifiedKeyPair;
  readonly adminKubeconfig: string;
  readonly adminKubeconfigPath: string;
  readonly etcdUrl: string;
  readonly etcdCa: CertifiedKeyPair;
  readonly etcdClient: CertifiedKeyPair;
  /** A fresh @kubernetes/client-node KubeConfig for the admin user. */
  kubeConfig(): KubeConfig;
  /** The tail of every component's log, for failure messages. */
  logs(): string;
  /** Stops every process and removes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The harness's real Kubernetes API (the infra cluster, or the cluster a join server talks to), not
 * the product's hosted control plane: starts etcd and kube-apiserver (and optionally
 * kube-controller-manager and kube-scheduler) as child processes on free loopback ports, with a
 * fresh PKI made by packages/shared, RBAC + Node authorization, NodeRestriction and bootstrap-token
 * authentication, as a kubeadm cluster has.
 */
export async function startLocalKubeCluster(
  options: LocalKubeClusterOptions = {},
): Promise<LocalKubeCluster> {
  const name = options.name ?? 'harness';
  const binaries = {
    etcd: kubeBinary('etcd'),
    apiserver: kubeBinary('kube-apiserver'),
    controllerManager: options.controllerManager === true ? kubeBinary('kube-controller-manager') : '',
    scheduler: options.scheduler === true ? kubeBinary('kube-scheduler') : '',
  };
  const dir = await mkdtemp(join(tmpdir(), `${uniqueTestResourceName()}-${name}-`));
  const group = new ChildProcessGroup(dir);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await group.stop();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const [etcdClientPort, etcdPeerPort, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const url = `https://127.0.0.1:${apiPort}`;
    const etcdUrl = `https://127.0.0.1:${etcdClientPort}`;
    const pki = await generateHarnessPki(options.apiserverIpSans ?? []);
    const file = async (fileName: string, text: string): Promise<string> => {
      const path = join(dir, fileName);
      await writeFile(path, text, { mode: 0o600 });
      await chmod(path, 0o600);
      return path;
    };
    const paths = {
      ca: await file('ca.crt', pki.ca.certPem),
      caKey: await file('ca.key', pki.ca.keyPem),
      etcdCa: await file('etcd-ca.crt', pki.etcdCa.certPem),
      etcdServer: await file('etcd-server.crt', pki.etcdServer.certPem),
      etcdServerKey: await file('etcd-server.key', pki.etcdServer.keyPem),
      etcdClient: await file('apiserver-etcd-client.crt', pki.etcdClient.certPem),
      etcdClientKey: await file('apiserver-etcd-client.key', pki.etcdClient.keyPem),
      apiserver: await file('apiserver.crt', pki.apiserver.certPem),
      apiserverKey: await file('apiserver.key', pki.apiserver.keyPem),
      kubeletClient: await file('apiserver-kubelet-client.crt', pki.kubeletClient.certPem),
      kubeletClientKey: await file('apiserver-kubelet-client.key', pki.kubeletClient.keyPem),
      saKey: await file('sa.key', pki.serviceAccount.privateKeyPem),
      saPub: await file('sa.pub', pki.serviceAccount.publicKeyPem),
    };
    const kubeconfigFor = (userName: string, cert: CertifiedKeyPair): string =>
      renderKubeconfig({
        clusterName: name,
        server: url,
        caPem: pki.ca.certPem,
        userName,
        credentials: { clientCertPem: cert.certPem, clientKeyPem: cert.keyPem },
      });
    const adminKubeconfig = kubeconfigFor('admin', pki.admin);
    const adminKubeconfigPath = await file('admin.kubeconfig', adminKubeconfig);

    group.start('etcd', binaries.etcd, [
      `--name=${name}`,
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=${name}=http://127.0.0.1:${etcdPeerPort}`,
      `--cert-file=${paths.etcdServer}`,
      `--key-file=${paths.etcdServerKey}`,
      `--trusted-ca-file=${paths.etcdCa}`,
      '--client-cert-auth',
      // Test data is thrown away; skipping fsync makes a control plane start in seconds.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);

    group.start('kube-apiserver', binaries.apiserver, [
      `--etcd-servers=${etcdUrl}`,
      `--etcd-cafile=${paths.etcdCa}`,
      `--etcd-certfile=${paths.etcdClient}`,
      `--etcd-keyfile=${paths.etcdClientKey}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // The apiserver refuses to publish a loopback address in the `kubernetes` Endpoints; tests
      // reach it directly, so nothing needs that Service's endpoints.
      '--endpoint-reconciler-type=none',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${paths.apiserver}`,
      `--tls-private-key-file=${paths.apiserverKey}`,
      `--client-ca-file=${paths.ca}`,
      `--kubelet-client-certificate=${paths.kubeletClient}`,
      `--kubelet-client-key=${paths.kubeletClientKey}`,
      `--service-account-key-file=${paths.saPub}`,
      `--service-account-signing-key-file=${paths.saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-cluster-ip-range=${options.serviceClusterIpRange ?? '10.0.0.0/24'}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--enable-bootstrap-token-auth=true',
      '--allow-privileged=true',
      '--profiling=false',
      ...(options.apiserverArgs ?? []),
    ]);

    // The controller-manager and scheduler exit if the apiserver does not answer when they start.
    await waitForReady(url, pki, group, options.readyTimeoutMs ?? 60_000);

    if (options.controllerManager === true) {
      const kubeconfigPath = await file(
        'controller-manager.kubeconfig',
        kubeconfigFor('kcm', pki.controllerManager),
      );
      group.start('kube-controller-manager', binaries.controllerManager, [
        `--kubeconfig=${kubeconfigPath}`,
        `--authentication-kubeconfig=${kubeconfigPath}`,
        `--authorization-kubeconfig=${kubeconfigPath}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort()}`,
        `--cert-dir=${join(dir, 'kcm-certs')}`,
        `--cluster-signing-cert-file=${paths.ca}`,
        `--cluster-signing-key-file=${paths.caKey}`,
        `--root-ca-file=${paths.ca}`,
        `--service-account-private-key-file=${paths.saKey}`,
        '--use-service-account-credentials=true',
        '--controllers=*,bootstrapsigner,tokencleaner',
        '--leader-elect=false',
        ...(options.controllerManagerArgs ?? []),
      ]);
    }
    if (options.scheduler === true) {
      const kubeconfigPath = await file('scheduler.kubeconfig', kubeconfigFor('scheduler', pki.scheduler));
      group.start('kube-scheduler', binaries.scheduler, [
        `--kubeconfig=${kubeconfigPath}`,
        `--authentication-kubeconfig=${kubeconfigPath}`,
        `--authorization-kubeconfig=${kubeconfigPath}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort()}`,
        '--leader-elect=false',
      ]);
    }

    return {
      name,
      url,
      dir,
      ca: pki.ca,
      admin: pki.admin,
      adminKubeconfig,
      adminKubeconfigPath,
      etcdUrl,
      etcdCa: pki.etcdCa,
      etcdClient: pki.etcdClient,
      kubeConfig: () => {
        const kc = new KubeConfig();
        kc.loadFromString(adminKubeconfig);
        return kc;
      },
      logs: () => group.logTails(),
      stop,
    };
  } catch (error) {
    const logs = group.logTails();
    await stop();
    throw new Error(`control plane ${name} failed to start: ${(error as Error).message}\n${logs}`, {
      cause: error,
    });
  }
}

async function generateHarnessPki(extraIpSans: readonly string[]) {
  const [ca, etcdCa, serviceAccount] = await Promise.all([
    createCertificateAuthority('kubernetes-ca'),
    createCertificateAuthority('etcd-ca'),
    generateRsaKeyPair(),
  ]);
  const [apiserver, admin, kubeletClient, controllerManager, scheduler, etcdServer, etcdClient] =
    await Promise.all([
      issueCertificate(ca, {
        commonName: 'kube-apiserver',
        dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
        ipAddresses: ['127.0.0.1', '10.0.0.1', ...extraIpSans],
        usage: 'server',
      }),
      issueCertificate(ca, {
        commonName: 'kubernetes-admin',
        organizations: ['system:masters'],
        usage: 'client',
      }),
      issueCertificate(ca, {
        commonName: 'kube-apiserver-kubelet-client',
        organizations: ['kubeadm:cluster-admins'],
        usage: 'client',
      }),
      issueCertificate(ca, { commonName: 'system:kube-controller-manager', usage: 'client' }),
      issueCertificate(ca, { commonName: 'system:kube-scheduler', usage: 'client' }),
      issueCertificate(etcdCa, {
        commonName: 'etcd-server',
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        usage: 'server-client',
      }),
      issueCertificate(etcdCa, { commonName: 'kube-apiserver-etcd-client', usage: 'client' }),
    ]);
  return {
    ca,
    etcdCa,
    serviceAccount,
    apiserver,
    admin,
    kubeletClient,
    controllerManager,
    scheduler,
    etcdServer,
    etcdClient,
  };
}

async function waitForReady(
  url: string,
  pki: { ca: CertifiedKeyPair; admin: CertifiedKeyPair },
  group: ChildProcessGroup,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const res = await httpsGet(
        `${url}/readyz`,
        { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem },
        2000,
      );
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${res.body.slice(0, 500)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    const exited = group.firstExited();
    if (exited !== undefined)
      throw new Error(`${exited.name} exited before ${url}/readyz answered (last: ${last})`);
    await sleep(250);
  }
  throw new Error(`${url}/readyz not ready after ${timeoutMs}ms (last: ${last})`);
}
