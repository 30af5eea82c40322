import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { opensslCsr } from './openssl-csr.js';
import { BOOTSTRAPPERS_GROUP } from '../../src/contract.js';
import type { CertificateSigningRequest } from '../../src/kube/api.js';
import {
  KUBELET_CLIENT_SIGNER,
  bootstrapRequesterOf,
  existingNodeDenial,
  isDecided,
  reviewNodeClientCsr,
} from '../../src/join-server/csr-approval/node-client-csr.js';
import { readRequestedSubject } from '../../src/join-server/csr-approval/pkcs10.js';
import {
  MAX_JOIN_NODE_NAME_LENGTH,
  bootstrapGroupsFor,
  nodeNameOfGroups,
} from '../../src/join-server/node-bootstrap-group.js';

// CSRs made by a real openssl (as the kubelet's Go code makes them: a P-256 key, O and CN, no
// extensions), reviewed by the approver's pure core.

function csr(
  pem: string,
  overrides: Partial<CertificateSigningRequest['spec']> = {},
): CertificateSigningRequest {
  return {
    metadata: { name: 'csr-1' },
    spec: {
      request: Buffer.from(pem).toString('base64'),
      signerName: KUBELET_CLIENT_SIGNER,
      usages: ['digital signature', 'client auth'],
      username: 'system:bootstrap:abc123',
      groups: [...bootstrapGroupsFor('worker-a.example.com'), 'system:authenticated'],
      ...overrides,
    },
  };
}

const requester = { bootstrapId: 'abc123', nodeName: 'worker-a.example.com' };

describe('node bootstrap groups', () => {
  it("round-trip a node name through the group, '.' written ':'", () => {
    const groups = bootstrapGroupsFor('worker-a.example.com');
    assert.deepEqual(groups, [BOOTSTRAPPERS_GROUP, `${BOOTSTRAPPERS_GROUP}:node:worker-a:example:com`]);
    for (const group of groups) assert.match(group, /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/);
    assert.equal(nodeNameOfGroups(groups), 'worker-a.example.com');
  });

  it('fit the bootstrap group pattern up to the longest name allowed, and refuse longer ones', () => {
    const longest = 'a'.repeat(MAX_JOIN_NODE_NAME_LENGTH);
    assert.match(bootstrapGroupsFor(longest)[1], /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/);
    assert.throws(() => bootstrapGroupsFor(`${longest}a`), /at most 240 characters/);
  });

  it('name no node when there is no node group, or more than one', () => {
    assert.equal(nodeNameOfGroups([BOOTSTRAPPERS_GROUP]), undefined);
    assert.equal(nodeNameOfGroups([...bootstrapGroupsFor('a'), bootstrapGroupsFor('b')[1]]), undefined);
  });
});

describe('reviewNodeClientCsr', () => {
  it('reads the subject of a kubelet-shaped request', () => {
    const subject = readRequestedSubject(opensslCsr('/O=system:nodes/CN=system:node:worker-a.example.com'));
    assert.deepEqual(subject.attributes, [
      ['2.5.4.10', 'system:nodes'],
      ['2.5.4.3', 'system:node:worker-a.example.com'],
    ]);
    assert.equal(subject.requestAttributes, 0);
  });

  it('approves CN=system:node:<the token node>, O=system:nodes, the kubelet usages', () => {
    const review = reviewNodeClientCsr(
      csr(opensslCsr('/O=system:nodes/CN=system:node:worker-a.example.com')),
      requester,
    );
    assert.equal(review.action, 'approve');
  });

  it('denies another node name, naming both names', () => {
    const review = reviewNodeClientCsr(
      csr(opensslCsr('/O=system:nodes/CN=system:node:evil-node')),
      requester,
    );
    assert.ok(review.action === 'deny');
    assert.equal(review.reason, 'K8sOnK8sWrongNodeName');
    assert.match(review.message, /minted for node worker-a\.example\.com.*not CN=system:node:evil-node/);
  });

  it('denies extra organizations, extra subject fields, extensions (SANs) and other usages', () => {
    const cn = 'CN=system:node:worker-a.example.com';
    const cases: [string, CertificateSigningRequest, string][] = [
      [
        'system:masters',
        csr(opensslCsr(`/O=system:nodes/O=system:masters/${cn}`)),
        'K8sOnK8sWrongOrganization',
      ],
      ['no O', csr(opensslCsr(`/${cn}`)), 'K8sOnK8sWrongOrganization'],
      ['OU', csr(opensslCsr(`/O=system:nodes/OU=x/${cn}`)), 'K8sOnK8sUnexpectedFields'],
      [
        'a DNS SAN',
        csr(opensslCsr(`/O=system:nodes/${cn}`, ['-addext', 'subjectAltName=DNS:kubernetes'])),
        'K8sOnK8sUnexpectedFields',
      ],
      [
        'server auth',
        csr(opensslCsr(`/O=system:nodes/${cn}`), { usages: ['digital signature', 'server auth'] }),
        'K8sOnK8sWrongUsages',
      ],
      ['two CNs', csr(opensslCsr(`/O=system:nodes/${cn}/${cn}`)), 'K8sOnK8sWrongNodeName'],
      ['not PEM', csr('garbage'), 'K8sOnK8sUnreadableRequest'],
    ];
    for (const [what, request, reason] of cases) {
      const review = reviewNodeClientCsr(request, requester);
      assert.equal(review.action === 'deny' ? review.reason : review.action, reason, what);
    }
  });

  it('denies a bootstrap token of our group that names no node, saying how to get one that does', () => {
    const review = reviewNodeClientCsr(csr(opensslCsr('/O=system:nodes/CN=system:node:x')), {
      bootstrapId: 'abc123',
      nodeName: undefined,
    });
    assert.ok(review.action === 'deny');
    assert.match(review.message, /not bound to a node.*token create/);
  });

  it('tells an existing node apart, with what to do', () => {
    const review = existingNodeDenial({ bootstrapId: 'abc123', nodeName: 'worker-a' });
    assert.ok(review.action === 'deny');
    assert.match(review.message, /Node worker-a already exists.*kubectl delete node worker-a/);
  });
});

describe('bootstrapRequesterOf', () => {
  const pem = '-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n';

  it('takes only bootstrap tokens carrying our group', () => {
    assert.deepEqual(bootstrapRequesterOf(csr(pem)), requester);
    assert.equal(bootstrapRequesterOf(csr(pem, { username: 'system:node:worker-a' })), undefined);
    assert.equal(
      bootstrapRequesterOf(csr(pem, { groups: ['system:bootstrappers:kubeadm:default-node-token'] })),
      undefined,
    );
  });

  it('knows a decided CSR', () => {
    const decided = { ...csr(pem), status: { conditions: [{ type: 'Denied', status: 'True' }] } };
    assert.equal(isDecided(decided), true);
    assert.equal(isDecided(csr(pem)), false);
  });
});
