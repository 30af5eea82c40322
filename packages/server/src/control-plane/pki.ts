// The PKI of one hosted control plane: what it contains, which Secret holds each piece, and how it
// is generated (only what is missing, so a second `create` reuses every key and certificate).
import { randomBytes } from 'node:crypto';
import {
  createCertificateAuthority,
  describeCertificate,
  generateRsaKeyPair,
  isSignedBy,
  issueCertificate,
  type CertificateSpec,
  type CertifiedKeyPair,
  type KeyPair,
} from '@k8s-on-k8s/shared';
import type { ControlPlaneSpec } from './spec.js';
import { JOIN_SERVER_USER, KONNECTIVITY_SERVER_USER } from '../contract.js';

/** Every key, certificate and secret of a hosted control plane. */
export interface ControlPlanePki {
  readonly ca: CertifiedKeyPair;
  readonly frontProxyCa: CertifiedKeyPair;
  readonly etcdCa: CertifiedKeyPair;
  /**
   * Signs the kubelets' serving certificates (kube-controller-manager's kubernetes.io/kubelet-serving
   * signer) and nothing else; the apiserver trusts it, and only it, for kubelet connections
   * (--kubelet-certificate-authority). Apart from `ca` so that no certificate a node can obtain is
   * trusted by workers as the apiserver's or the join server's.
   */
  readonly kubeletServingCa: CertifiedKeyPair;
  readonly serviceAccount: KeyPair;
  /** 32 random bytes, base64: the secretbox key of the hosted apiserver's EncryptionConfiguration. */
  readonly encryptionKey: string;
  readonly apiserver: CertifiedKeyPair;
  readonly apiserverKubeletClient: CertifiedKeyPair;
  readonly apiserverEtcdClient: CertifiedKeyPair;
  readonly frontProxyClient: CertifiedKeyPair;
  readonly etcdServer: CertifiedKeyPair;
  readonly admin: CertifiedKeyPair;
  readonly controllerManager: CertifiedKeyPair;
  readonly scheduler: CertifiedKeyPair;
  readonly joinServer: CertifiedKeyPair;
  readonly joinServerClient: CertifiedKeyPair;
  /** The konnectivity proxy servers' agent port (TLS; agents dial it at the VIP). */
  readonly konnectivityServer: CertifiedKeyPair;
  /** The proxy servers' identity in the hosted cluster: TokenReviews of agents, their leases. */
  readonly konnectivityClient: CertifiedKeyPair;
}

export type CaName = 'ca' | 'frontProxyCa' | 'etcdCa' | 'kubeletServingCa';
export type LeafName = Exclude<keyof ControlPlanePki, CaName | 'serviceAccount' | 'encryptionKey'>;
export type PkiName = keyof ControlPlanePki;

/** The Secret (suffix after `<name>-`) that holds each piece; the keys inside follow kubernetes.io/tls. */
export const PKI_SECRET_SUFFIXES: Readonly<Record<PkiName, string>> = {
  ca: 'ca',
  frontProxyCa: 'front-proxy-ca',
  etcdCa: 'etcd-ca',
  kubeletServingCa: 'kubelet-serving-ca',
  serviceAccount: 'service-account',
  encryptionKey: 'encryption-key',
  apiserver: 'apiserver',
  apiserverKubeletClient: 'apiserver-kubelet-client',
  apiserverEtcdClient: 'apiserver-etcd-client',
  frontProxyClient: 'front-proxy-client',
  etcdServer: 'etcd-server',
  admin: 'admin',
  controllerManager: 'controller-manager-client',
  scheduler: 'scheduler-client',
  joinServer: 'join-server',
  joinServerClient: 'join-server-client',
  konnectivityServer: 'konnectivity-server',
  konnectivityClient: 'konnectivity-client',
};

export const PKI_NAMES = Object.keys(PKI_SECRET_SUFFIXES) as readonly PkiName[];
const CA_NAMES: readonly CaName[] = ['ca', 'frontProxyCa', 'etcdCa', 'kubeletServingCa'];
const CA_COMMON_NAMES: Readonly<Record<CaName, string>> = {
  ca: 'kubernetes',
  frontProxyCa: 'front-proxy-ca',
  etcdCa: 'etcd-ca',
  kubeletServingCa: 'kubelet-serving-ca',
};

/** Which CA signs a leaf, and what the leaf says. Identities follow kubeadm's where there is one. */
export function leafCertificates(
  spec: ControlPlaneSpec,
): Readonly<Record<LeafName, { readonly issuer: CaName; readonly spec: CertificateSpec }>> {
  const { name, namespace } = spec;
  const serviceNames = (service: string): string[] => [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
  const split = (hosts: readonly string[]) => ({
    dnsNames: hosts.filter((h) => !/^[\d.]+$/.test(h) && !h.includes(':')),
    ipAddresses: hosts.filter((h) => /^[\d.]+$/.test(h) || h.includes(':')),
  });
  return {
    apiserver: {
      issuer: 'ca',
      spec: {
        commonName: 'kube-apiserver',
        usage: 'server',
        ...split([
          spec.host,
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          `kubernetes.default.svc.${spec.clusterDomain}`,
          ...serviceNames(`${name}-apiserver`),
          spec.vip,
          spec.kubernetesServiceIp,
        ]),
      },
    },
    apiserverKubeletClient: {
      issuer: 'ca',
      spec: {
        commonName: 'kube-apiserver-kubelet-client',
        organizations: ['kubeadm:cluster-admins'],
        usage: 'client',
      },
    },
    apiserverEtcdClient: {
      issuer: 'etcdCa',
      spec: { commonName: 'kube-apiserver-etcd-client', usage: 'client' },
    },
    frontProxyClient: { issuer: 'frontProxyCa', spec: { commonName: 'front-proxy-client', usage: 'client' } },
    etcdServer: {
      issuer: 'etcdCa',
      // Peer traffic of the single member runs over loopback, so the same cert serves as peer cert.
      spec: {
        commonName: `${name}-etcd`,
        usage: 'server-client',
        ...split([...serviceNames(`${name}-etcd`), 'localhost', '127.0.0.1']),
      },
    },
    admin: {
      issuer: 'ca',
      spec: { commonName: 'kubernetes-admin', organizations: ['system:masters'], usage: 'client' },
    },
    controllerManager: {
      issuer: 'ca',
      spec: { commonName: 'system:kube-controller-manager', usage: 'client' },
    },
    scheduler: { issuer: 'ca', spec: { commonName: 'system:kube-scheduler', usage: 'client' } },
    joinServer: {
      issuer: 'ca',
      spec: {
        commonName: JOIN_SERVER_USER,
        usage: 'server',
        ...split([spec.joinHost, ...serviceNames(`${name}-join-server`)]),
      },
    },
    // The user renderJoinServerRbac binds in the hosted cluster; nothing more.
    joinServerClient: { issuer: 'ca', spec: { commonName: JOIN_SERVER_USER, usage: 'client' } },
    // Agents dial the VIP (their forwarder relays it to the public host) and check this name.
    konnectivityServer: {
      issuer: 'ca',
      spec: {
        commonName: 'konnectivity-server',
        usage: 'server',
        ...split([spec.vip, spec.host, ...serviceNames(`${name}-apiserver`)]),
      },
    },
    konnectivityClient: { issuer: 'ca', spec: { commonName: KONNECTIVITY_SERVER_USER, usage: 'client' } },
  };
}

/** Injected time and the existing pieces (read from the Secrets) that must be kept. */
export interface CompletePkiOptions {
  readonly now?: () => Date;
}

/**
 * Returns a complete PKI that keeps every piece of `existing` still valid for `spec`, and generates
 * the rest: a missing CA (and then every leaf it signs), a missing key, or a leaf whose names no
 * longer cover the spec (e.g. `--host` changed). The second `create` therefore generates nothing.
 */
export async function completeControlPlanePki(
  spec: ControlPlaneSpec,
  existing: Partial<ControlPlanePki>,
  options: CompletePkiOptions = {},
): Promise<{ pki: ControlPlanePki; generated: readonly PkiName[] }> {
  const generated: PkiName[] = [];
  const now = options.now ?? (() => new Date());
  const cas = Object.fromEntries(
    await Promise.all(
      CA_NAMES.map(async (caName) => {
        const kept = existing[caName];
        if (kept !== undefined) return [caName, kept] as const;
        generated.push(caName);
        return [caName, await createCertificateAuthority(CA_COMMON_NAMES[caName], { now })] as const;
      }),
    ),
  ) as Record<CaName, CertifiedKeyPair>;
  const serviceAccount =
    existing.serviceAccount ?? (generated.push('serviceAccount'), await generateRsaKeyPair());
  const encryptionKey =
    existing.encryptionKey ?? (generated.push('encryptionKey'), randomBytes(32).toString('base64'));

  const leaves = leafCertificates(spec);
  const leafEntries = await Promise.all(
    (Object.keys(leaves) as LeafName[]).map(async (leafName) => {
      const { issuer, spec: certSpec } = leaves[leafName];
      const kept = existing[leafName];
      if (kept !== undefined && covers(kept.certPem, cas[issuer].certPem, certSpec)) {
        return [leafName, kept] as const;
      }
      generated.push(leafName);
      return [leafName, await issueCertificate(cas[issuer], certSpec, { now })] as const;
    }),
  );
  const pki: ControlPlanePki = Object.freeze({
    ...cas,
    serviceAccount,
    encryptionKey,
    ...(Object.fromEntries(leafEntries) as Record<LeafName, CertifiedKeyPair>),
  });
  return { pki, generated };
}

/** A Secret's `data` (base64 values) as the API returns it, by Secret name. */
export type SecretDataByName = ReadonlyMap<string, Readonly<Record<string, string>>>;

/** Reads whatever PKI pieces the control plane's Secrets already hold; a partial piece counts as missing. */
export function readControlPlanePki(
  spec: ControlPlaneSpec,
  secrets: SecretDataByName,
): Partial<ControlPlanePki> {
  const found: Partial<Record<PkiName, unknown>> = {};
  for (const pkiName of PKI_NAMES) {
    const data = secrets.get(pkiSecretName(spec, pkiName));
    if (data === undefined) continue;
    const text = (key: string): string | undefined =>
      data[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8');
    if (pkiName === 'serviceAccount') {
      const privateKeyPem = text('sa.key');
      const publicKeyPem = text('sa.pub');
      if (privateKeyPem !== undefined && publicKeyPem !== undefined)
        found[pkiName] = { privateKeyPem, publicKeyPem };
    } else if (pkiName === 'encryptionKey') {
      const key = text('key');
      if (key !== undefined && Buffer.from(key, 'base64').length === 32) found[pkiName] = key;
    } else {
      const certPem = text('tls.crt');
      const keyPem = text('tls.key');
      if (certPem !== undefined && keyPem !== undefined) found[pkiName] = { certPem, keyPem };
    }
  }
  return found as Partial<ControlPlanePki>;
}

/** The Secret holding one PKI piece, e.g. `dev-apiserver-etcd-client`. */
export function pkiSecretName(spec: Pick<ControlPlaneSpec, 'name'>, pkiName: PkiName): string {
  return `${spec.name}-${PKI_SECRET_SUFFIXES[pkiName]}`;
}

/** The `data` of a PKI piece's Secret: kubernetes.io/tls keys, plus the issuer as ca.crt for leaves. */
export function pkiSecretData(
  pki: ControlPlanePki,
  pkiName: PkiName,
  spec: ControlPlaneSpec,
): Record<string, string> {
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  if (pkiName === 'serviceAccount') {
    return {
      'sa.key': b64(pki.serviceAccount.privateKeyPem),
      'sa.pub': b64(pki.serviceAccount.publicKeyPem),
    };
  }
  if (pkiName === 'encryptionKey') return { key: b64(pki.encryptionKey) };
  const pair = pki[pkiName];
  const data: Record<string, string> = { 'tls.crt': b64(pair.certPem), 'tls.key': b64(pair.keyPem) };
  if (!(CA_NAMES as readonly string[]).includes(pkiName)) {
    data['ca.crt'] = b64(pki[leafCertificates(spec)[pkiName as LeafName].issuer].certPem);
  }
  return data;
}

/**
 * True when the certificate is signed by `caPem` and names everything `wanted` asks for (order and
 * extra names do not matter).
 */
function covers(certPem: string, caPem: string, wanted: CertificateSpec): boolean {
  let summary;
  try {
    summary = describeCertificate(certPem);
    if (!isSignedBy(certPem, caPem)) return false;
  } catch {
    return false;
  }
  return (
    summary.commonName === wanted.commonName &&
    (wanted.dnsNames ?? []).every((n) => summary.dnsNames.includes(n)) &&
    (wanted.ipAddresses ?? []).every((ip) => summary.ipAddresses.includes(ip))
  );
}
