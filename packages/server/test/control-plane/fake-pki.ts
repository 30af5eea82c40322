// Deterministic stand-in PKI material for golden files: rendering never parses certificates, so
// labelled placeholder PEMs keep fixtures stable and readable.
import type { ControlPlanePki, PkiName } from '../../src/control-plane/pki.js';

function pem(kind: string, label: string): string {
  return `-----BEGIN ${kind}-----\n${Buffer.from(`fake ${label}`).toString('base64')}\n-----END ${kind}-----\n`;
}

function pair(label: string) {
  return { certPem: pem('CERTIFICATE', `${label} cert`), keyPem: pem('RSA PRIVATE KEY', `${label} key`) };
}

/** A complete ControlPlanePki whose every piece names itself; `overrides` swaps single pieces. */
export function fakeControlPlanePki(overrides: Partial<ControlPlanePki> = {}): ControlPlanePki {
  const leaves: Exclude<PkiName, 'serviceAccount' | 'encryptionKey'>[] = [
    'ca',
    'frontProxyCa',
    'etcdCa',
    'kubeletServingCa',
    'apiserver',
    'apiserverKubeletClient',
    'apiserverEtcdClient',
    'frontProxyClient',
    'etcdServer',
    'admin',
    'controllerManager',
    'scheduler',
    'joinServer',
    'joinServerClient',
    'konnectivityServer',
    'konnectivityClient',
  ];
  return {
    ...(Object.fromEntries(leaves.map((n) => [n, pair(n)])) as Omit<
      ControlPlanePki,
      'serviceAccount' | 'encryptionKey'
    >),
    serviceAccount: { privateKeyPem: pem('RSA PRIVATE KEY', 'sa'), publicKeyPem: pem('PUBLIC KEY', 'sa') },
    encryptionKey: Buffer.alloc(32, 7).toString('base64'),
    ...overrides,
  };
}
