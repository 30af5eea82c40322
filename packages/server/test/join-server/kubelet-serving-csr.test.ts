import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { opensslCsr } from './openssl-csr.js';
import type { CertificateSigningRequest, NodeObject } from '../../src/kube/api.js';
import {
  KUBELET_SERVING_SIGNER,
  requestingNodeOf,
  reviewKubeletServingCsr,
} from '../../src/join-server/csr-approval/kubelet-serving-csr.js';
import { readRequestedSubject, requestedSubjectAltNames } from '../../src/join-server/csr-approval/pkcs10.js';

// Serving CSRs made by a real openssl as the kubelet makes them (a P-256 key, O and CN, a
// subjectAltName of its Node's names), reviewed by the approver's pure core.

/** A serving CSR with the subjectAltName `altNames` (e.g. DNS:a,IP:198.18.0.1), or none. */
function servingCsr(subject: string, altNames?: string): string {
  return opensslCsr(subject, altNames === undefined ? [] : ['-addext', `subjectAltName=${altNames}`]);
}

function csr(
  pem: string,
  overrides: Partial<CertificateSigningRequest['spec']> = {},
): CertificateSigningRequest {
  return {
    metadata: { name: 'csr-1' },
    spec: {
      request: Buffer.from(pem).toString('base64'),
      signerName: KUBELET_SERVING_SIGNER,
      usages: ['digital signature', 'server auth'],
      username: 'system:node:worker-a',
      groups: ['system:nodes', 'system:authenticated'],
      ...overrides,
    },
  };
}

const node = (name: string, addresses: [string, string][]): NodeObject => ({
  metadata: { name },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});
const workerA = node('worker-a', [
  ['InternalIP', '198.18.1.2'],
  ['InternalIP', 'fd00::1:2'],
  ['Hostname', 'worker-a'],
]);
const workerB = node('worker-b', [['InternalIP', '198.18.1.3']]);
const nodes = [workerA, workerB];
const own = '/O=system:nodes/CN=system:node:worker-a';

describe('requestedSubjectAltNames', () => {
  it('reads DNS names, IPv4 and IPv6 addresses (RFC 5952 text), e-mail and URI names', () => {
    const subject = readRequestedSubject(
      servingCsr(
        own,
        'DNS:worker-a,IP:198.18.1.2,IP:fd00:0:0:0:0:0:1:2,IP:2001:db8:0:0:1:0:0:1,email:a@b.c,URI:spiffe://x',
      ),
    );
    assert.deepEqual(requestedSubjectAltNames(subject), {
      dnsNames: ['worker-a'],
      ipAddresses: ['198.18.1.2', 'fd00::1:2', '2001:db8::1:0:0:1'],
      emailAddresses: ['a@b.c'],
      uris: ['spiffe://x'],
      other: 0,
    });
  });

  it('is undefined for a request without the extension', () => {
    assert.equal(requestedSubjectAltNames(readRequestedSubject(servingCsr(own))), undefined);
  });
});

describe('reviewKubeletServingCsr', () => {
  const review = (pem: string, overrides: Partial<CertificateSigningRequest['spec']> = {}, all = nodes) =>
    reviewKubeletServingCsr(
      csr(pem, overrides),
      'worker-a',
      all.find((n) => n.metadata.name === 'worker-a'),
      all,
    );

  it("approves the Node's own hostname and addresses, with the kubelet's usages (RSA's too)", () => {
    const pem = servingCsr(own, 'DNS:worker-a,IP:198.18.1.2,IP:fd00::1:2');
    assert.equal(review(pem).action, 'approve');
    assert.equal(
      review(pem, { usages: ['key encipherment', 'digital signature', 'server auth'] }).action,
      'approve',
    );
  });

  it('names the node only for node requesters in system:nodes', () => {
    assert.equal(requestingNodeOf(csr('x')), 'worker-a');
    assert.equal(requestingNodeOf(csr('x', { groups: ['system:authenticated'] })), undefined);
    assert.equal(requestingNodeOf(csr('x', { username: 'alice' })), undefined);
  });

  const denials: [string, () => ReturnType<typeof review>, string, RegExp][] = [
    [
      'an unregistered node',
      () => reviewKubeletServingCsr(csr(servingCsr(own, 'IP:198.18.1.2')), 'worker-a', undefined, []),
      'K8sOnK8sNoSuchNode',
      /not a registered Node/,
    ],
    [
      'another CN',
      () => review(servingCsr('/O=system:nodes/CN=system:node:worker-b', 'IP:198.18.1.2')),
      'K8sOnK8sWrongNodeName',
      /CN=system:node:worker-a/,
    ],
    [
      'a second organization',
      () => review(servingCsr(`/O=system:nodes/O=system:masters/CN=system:node:worker-a`, 'IP:198.18.1.2')),
      'K8sOnK8sUnexpectedFields',
      /exactly O=system:nodes/,
    ],
    [
      'client auth',
      () =>
        review(servingCsr(own, 'IP:198.18.1.2'), {
          usages: ['digital signature', 'server auth', 'client auth'],
        }),
      'K8sOnK8sWrongUsages',
      /not client auth, digital signature, server auth/,
    ],
    ['no names', () => review(servingCsr(own)), 'K8sOnK8sNoNames', /at least one/],
    [
      'a URI name',
      () => review(servingCsr(own, 'IP:198.18.1.2,URI:https://k8s-join-server')),
      'K8sOnK8sUnexpectedNames',
      /only DNS names and IP addresses/,
    ],
    [
      'an address the Node does not report',
      () => review(servingCsr(own, 'IP:198.18.1.2,IP:10.0.0.1')),
      'K8sOnK8sNamesNotOfNode',
      /asks for 10\.0\.0\.1, which/,
    ],
    [
      'a DNS name the Node does not report',
      () => review(servingCsr(own, 'DNS:kubernetes.default.svc')),
      'K8sOnK8sNamesNotOfNode',
      /kubernetes\.default\.svc/,
    ],
    [
      "another Node's address, also reported by this one",
      () =>
        review(servingCsr(own, 'IP:198.18.1.3'), {}, [
          node('worker-a', [['InternalIP', '198.18.1.3']]),
          workerB,
        ]),
      'K8sOnK8sAddressOfAnotherNode',
      /198\.18\.1\.3 \(Node worker-b\)/,
    ],
  ];
  for (const [what, run, reason, message] of denials) {
    it(`denies ${what}`, () => {
      const result = run();
      assert.ok(result.action === 'deny', JSON.stringify(result));
      assert.equal(result.reason, reason);
      assert.match(result.message, message);
    });
  }

  it('denies an extension other than subjectAltName', () => {
    const pem = opensslCsr(own, [
      ...['-addext', 'subjectAltName=IP:198.18.1.2'],
      ...['-addext', 'basicConstraints=CA:TRUE'],
    ]);
    const result = review(pem);
    assert.ok(result.action === 'deny');
    assert.equal(result.reason, 'K8sOnK8sUnexpectedFields');
  });
});
