import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreatedTokenSchema,
  DEFAULT_API_ENDPOINT,
  JOIN_API_VERSION,
  errorBody,
  errorFromBody,
  parseCreateTokenRequest,
  parseCreatedToken,
  parseErrorBody,
  parseJoinBundle,
  parseJoinRequest,
  parseTokenInfo,
  type JoinBundleInput,
  HTTP_STATUS_BY_CODE,
  httpStatusOf,
} from '../src/protocol.js';
import type { K8sOnK8sError } from '../src/errors.js';
import { ERROR_CODES, JoinError, ValidationError } from '../src/errors.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KUBECONFIG_SECRET = 'abcdef.0123456789abcdef';

function bundle(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: JoinBundleInput = {
    apiVersion: JOIN_API_VERSION,
    kind: 'JoinBundle',
    nodeName: 'worker-1',
    caCert: CA,
    apiServer: {
      endpoint: 'https://10.199.199.199:443',
      upstreams: ['203.0.113.7:30443', '[2001:db8::1]:6443'],
    },
    bootstrapKubeconfig: `apiVersion: v1\nkind: Config\nusers:\n- name: b\n  user:\n    token: ${KUBECONFIG_SECRET}\n`,
    bootstrapTokenExpiresAt: '2030-01-02T03:04:05Z',
    cluster: {
      dnsIP: '10.96.0.10',
      domain: 'cluster.local',
      kubernetesVersion: 'v1.31.2',
      serviceCIDR: '10.96.0.0/12',
      podCIDR: '10.244.0.0/16,fd00:10:244::/56',
    },
    kubeletConfig: {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      cgroupDriver: 'systemd',
    },
    serverTime: '2030-01-02T02:04:05.123+00:00',
    nodeLabels: { 'node.example.com/pool': 'gpu', tier: '' },
    nodeTaints: [
      { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
      { key: 'x', effect: 'NoExecute' },
    ],
  };
  return { ...base, ...overrides };
}

// Asserts the thrown error's class, code and that its message matches every pattern.
function assertInvalid(
  fn: () => unknown,
  cls: new (...args: never[]) => K8sOnK8sError,
  code: string,
  ...patterns: RegExp[]
): string {
  let message = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, String(err));
    assert.equal(err.code, code);
    for (const p of patterns) assert.match(err.message, p);
    message = err.message;
    return true;
  });
  return message;
}

void describe('parseJoinRequest', () => {
  const good = {
    apiVersion: JOIN_API_VERSION,
    kind: 'JoinRequest',
    nodeName: 'worker-1',
    os: 'linux',
    arch: 'amd64',
  };

  void it('accepts a request, drops unknown fields and freezes the result', () => {
    const req = parseJoinRequest({ ...good, kernelVersion: '6.6.0', agentVersion: '0.1.0', future: true });
    assert.deepEqual(req, { ...good, kernelVersion: '6.6.0', agentVersion: '0.1.0' });
    assert.ok(Object.isFrozen(req));
  });

  void it('names the field and problem, for every problem at once', () => {
    assertInvalid(
      () =>
        parseJoinRequest({
          ...good,
          apiVersion: 'join.k8s-on-k8s.io/v2',
          nodeName: 'Bad/Name',
          os: undefined,
          arch: 3,
        }),
      ValidationError,
      'INVALID_REQUEST',
      /^Invalid JoinRequest: /,
      /apiVersion must be "join\.k8s-on-k8s\.io\/v1", got "join\.k8s-on-k8s\.io\/v2"/,
      /nodeName: Expected the node name to be a DNS-1123 subdomain .*"Bad\/Name"/,
      /os is required/,
      /arch must be string, got number/,
    );
  });

  void it('rejects a wrong kind, an empty os and a non-object body', () => {
    assertInvalid(
      () => parseJoinRequest({ ...good, kind: 'JoinBundle' }),
      ValidationError,
      'INVALID_REQUEST',
      /kind must be "JoinRequest"/,
    );
    assertInvalid(
      () => parseJoinRequest({ ...good, os: '' }),
      ValidationError,
      'INVALID_REQUEST',
      /os: must not be empty/,
    );
    assertInvalid(
      () => parseJoinRequest('hello'),
      ValidationError,
      'INVALID_REQUEST',
      /\(the body\) must be object, got string/,
    );
    assertInvalid(
      () => parseJoinRequest(null),
      ValidationError,
      'INVALID_REQUEST',
      /must be object, got null/,
    );
  });
});

void describe('parseJoinBundle', () => {
  void it('accepts a full bundle, keeping extra kubelet configuration, deeply frozen', () => {
    const parsed = parseJoinBundle(bundle());
    assert.equal(parsed.nodeName, 'worker-1');
    assert.deepEqual(parsed.apiServer.upstreams, ['203.0.113.7:30443', '[2001:db8::1]:6443']);
    assert.equal(parsed.kubeletConfig.cgroupDriver, 'systemd');
    assert.deepEqual(parsed.nodeTaints?.[1], { key: 'x', effect: 'NoExecute' });
    assert.ok(Object.isFrozen(parsed.apiServer.upstreams));
    assert.ok(Object.isFrozen(parsed.kubeletConfig));
    assert.throws(() => {
      (parsed.cluster as { domain: string }).domain = 'evil';
    }, TypeError);
  });

  void it('defaults the API endpoint to the VIP', () => {
    const parsed = parseJoinBundle(bundle({ apiServer: { upstreams: ['a.example:443'] } }));
    assert.equal(parsed.apiServer.endpoint, DEFAULT_API_ENDPOINT);
    assert.equal(DEFAULT_API_ENDPOINT, 'https://10.199.199.199:443');
  });

  void it('accepts a minimal bundle without the optional fields', () => {
    const b = bundle();
    delete b.nodeLabels;
    delete b.nodeTaints;
    const cluster = { dnsIP: 'fd00::a', domain: 'cluster.local', kubernetesVersion: 'v1.32.0-rc.1' };
    const parsed = parseJoinBundle({ ...b, cluster });
    assert.equal(parsed.nodeLabels, undefined);
    assert.equal(parsed.cluster.serviceCIDR, undefined);
  });

  void it('rejects each malformed field with a JoinError naming its path', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ kind: 'JoinRequest' }, /kind must be "JoinBundle"/],
      [{ nodeName: 'a..b' }, /nodeName: Expected the node name/],
      [{ caCert: 'not a cert' }, /caCert: must be a PEM certificate/],
      [
        { apiServer: { endpoint: 'http://10.199.199.199', upstreams: ['a:1'] } },
        /apiServer\.endpoint: must be https:\/\/IP\[:PORT\].*, got "http:\/\/10\.199\.199\.199"/,
      ],
      [{ apiServer: { endpoint: 'not a url', upstreams: ['a:1'] } }, /apiServer\.endpoint: must be https/],
      [{ apiServer: { upstreams: [] } }, /apiServer\.upstreams: must list at least one host:port/],
      [
        { apiServer: { upstreams: ['ok:1', 'bad'] } },
        /apiServer\.upstreams\[1\]: Expected an upstream to be HOST:PORT.*"bad"/,
      ],
      [{ apiServer: { upstreams: ['h:70000'] } }, /apiServer\.upstreams\[0\]/],
      [{ bootstrapKubeconfig: '' }, /bootstrapKubeconfig: must not be empty/],
      [
        { bootstrapTokenExpiresAt: '2030-01-02 03:04:05' },
        /bootstrapTokenExpiresAt: must be an RFC 3339 timestamp/,
      ],
      [{ serverTime: 'yesterday' }, /serverTime: must be an RFC 3339/],
      [
        { cluster: { dnsIP: '10.96.0', domain: 'cluster.local', kubernetesVersion: 'v1.31.2' } },
        /cluster\.dnsIP: must be an IP address, got "10\.96\.0"/,
      ],
      [
        { cluster: { dnsIP: '10.96.0.10', domain: 'Cluster_Local', kubernetesVersion: 'v1.31.2' } },
        /cluster\.domain: must be a DNS domain/,
      ],
      [
        { cluster: { dnsIP: '10.96.0.10', domain: 'cluster.local', kubernetesVersion: '1.31.2' } },
        /cluster\.kubernetesVersion: must be a Kubernetes version/,
      ],
      [
        { cluster: { dnsIP: '10.96.0.10', domain: 'cluster.local', kubernetesVersion: 'v1.31' } },
        /cluster\.kubernetesVersion/,
      ],
      [
        {
          cluster: {
            dnsIP: '10.96.0.10',
            domain: 'cluster.local',
            kubernetesVersion: 'v1.31.2',
            serviceCIDR: '10.96.0.0',
          },
        },
        /cluster\.serviceCIDR: must be a CIDR/,
      ],
      [
        {
          cluster: {
            dnsIP: '10.96.0.10',
            domain: 'cluster.local',
            kubernetesVersion: 'v1.31.2',
            podCIDR: '10.244.0.0/33',
          },
        },
        /cluster\.podCIDR/,
      ],
      [
        { kubeletConfig: { apiVersion: 'v1', kind: 'KubeletConfiguration' } },
        /kubeletConfig\.apiVersion must be "kubelet\.config\.k8s\.io\/v1beta1"/,
      ],
      [
        { kubeletConfig: { apiVersion: 'kubelet.config.k8s.io/v1beta1' } },
        /kubeletConfig\.kind is required \("KubeletConfiguration"\)/,
      ],
      [{ kubeletConfig: [] }, /kubeletConfig must be object, got array/],
      [{ nodeLabels: { 'bad key!': 'x' } }, /nodeLabels\["bad key!"\]: label key "bad key!" is not a valid/],
      [{ nodeLabels: { ok: 'x'.repeat(64) } }, /nodeLabels\.ok: .* is not a valid label value/],
      [{ nodeLabels: { 'UPPER.example/x': 'y' } }, /not a valid Kubernetes label key/],
      [{ nodeTaints: [{ key: 'k', effect: 'Sometimes' }] }, /nodeTaints\[0\]\.effect: Invalid enum value/],
      [{ nodeTaints: [{ effect: 'NoSchedule' }] }, /nodeTaints\[0\]\.key is required/],
    ];
    for (const [override, pattern] of cases) {
      const message = assertInvalid(
        () => parseJoinBundle(bundle(override)),
        JoinError,
        'INVALID_BUNDLE',
        /^Invalid JoinBundle: /,
        pattern,
      );
      assert.ok(!message.includes(KUBECONFIG_SECRET), message);
    }
  });

  void it('takes apiServer.endpoint only as https://IP[:PORT]: its host goes on lo and into a unit', () => {
    const parsed = parseJoinBundle(
      bundle({ apiServer: { endpoint: 'https://10.199.199.199:6443', upstreams: ['a:1'] } }),
    );
    assert.equal(parsed.apiServer.endpoint, 'https://10.199.199.199:6443');
    const v6 = parseJoinBundle(bundle({ apiServer: { endpoint: 'https://[fd00::1]/', upstreams: ['a:1'] } }));
    assert.equal(v6.apiServer.endpoint, 'https://[fd00::1]/');
    for (const endpoint of [
      'https://10.0.0.1;touch:443',
      'https://a$b:443',
      'https://a%25b/',
      "https://a'b/",
      'https://api.example.com:443',
      'https://10.0.0.1:443/path',
      'https://10.0.0.1/?q',
      'https://u:p@10.0.0.1/',
      'https://10.0.0.1:0',
    ]) {
      assertInvalid(
        () => parseJoinBundle(bundle({ apiServer: { endpoint, upstreams: ['a:1'] } })),
        JoinError,
        'INVALID_BUNDLE',
        /apiServer\.endpoint: must be https:\/\/IP\[:PORT\]/,
      );
    }
  });

  void it('never quotes the bootstrap kubeconfig, even when it is the wrong type', () => {
    const message = assertInvalid(
      () => parseJoinBundle(bundle({ bootstrapKubeconfig: { token: KUBECONFIG_SECRET } })),
      JoinError,
      'INVALID_BUNDLE',
      /bootstrapKubeconfig must be string, got object/,
    );
    assert.ok(!message.includes(KUBECONFIG_SECRET));
  });

  void it("reports a 502 with a hint, since a bad bundle is the server's fault", () => {
    try {
      parseJoinBundle({});
      assert.fail('expected a throw');
    } catch (err) {
      assert.ok(err instanceof JoinError);
      assert.equal(err.code, 'INVALID_BUNDLE');
      assert.equal(httpStatusOf(err), 502);
      assert.ok(err.hint !== undefined);
    }
  });
});

void describe('parseCreateTokenRequest', () => {
  void it('applies defaults: one use, one hour', () => {
    const req = parseCreateTokenRequest({});
    assert.deepEqual(req, { ttl: '1h', uses: 1 });
    assert.ok(Object.isFrozen(req));
  });

  void it('accepts every field', () => {
    const body = {
      ttl: '30m',
      uses: 0,
      nodeName: 'worker-2',
      description: 'd'.repeat(256),
      labels: { pool: 'a' },
      taints: [{ key: 'k', value: 'v', effect: 'PreferNoSchedule' }],
    };
    assert.deepEqual(parseCreateTokenRequest(body), body);
  });

  void it('rejects bad values, naming the field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ttl: 'soon' }, /ttl: Expected ttl to be a duration like 30m.*"soon"/],
      [{ ttl: '0s' }, /ttl: Expected ttl to be longer than 0s, got "0s"/],
      [{ ttl: 30 }, /ttl must be string, got number/],
      [{ uses: -1 }, /uses: Number must be greater than or equal to 0/],
      [{ uses: 1.5 }, /uses must be integer, got float/],
      [{ uses: '3' }, /uses must be number, got string/],
      [{ nodeName: 'UPPER' }, /nodeName: Expected the node name/],
      [{ description: 'd'.repeat(257) }, /description: must be at most 256 characters/],
      [{ labels: { a: 1 } }, /labels\.a must be string, got number/],
      [{ taints: [{ key: 'k', effect: 'noschedule' }] }, /taints\[0\]\.effect/],
    ];
    for (const [body, pattern] of cases) {
      assertInvalid(
        () => parseCreateTokenRequest(body),
        ValidationError,
        'INVALID_REQUEST',
        /^Invalid CreateTokenRequest: /,
        pattern,
      );
    }
  });
});

void describe('node labels a kubelet may set on its own Node (NodeRestriction)', () => {
  const refusal = /^Invalid CreateTokenRequest: labels\[/;
  void it('accepts labels outside kubernetes.io and k8s.io, and the allowed ones inside', () => {
    for (const key of [
      'pool',
      'example.com/tier',
      'kubernetes.io.example.com/x',
      'kubernetes.io/hostname',
      'kubernetes.io/os',
      'kubernetes.io/arch',
      'beta.kubernetes.io/os',
      'beta.kubernetes.io/arch',
      'beta.kubernetes.io/instance-type',
      'node.kubernetes.io/instance-type',
      'topology.kubernetes.io/zone',
      'topology.kubernetes.io/region',
      'failure-domain.beta.kubernetes.io/zone',
      'failure-domain.beta.kubernetes.io/region',
      'node.kubernetes.io/pool',
      'team.node.kubernetes.io/a',
      'kubelet.kubernetes.io/x',
      'a.kubelet.kubernetes.io/x',
    ]) {
      assert.deepEqual(parseCreateTokenRequest({ labels: { [key]: 'v' } }).labels, { [key]: 'v' }, key);
    }
  });

  void it('refuses other kubernetes.io and k8s.io labels, naming the label and why', () => {
    for (const key of [
      'node-role.kubernetes.io/worker',
      'kubernetes.io/role',
      'topology.kubernetes.io/rack',
      'example.kubernetes.io/x',
      'k8s.io/x',
      'sigs.k8s.io/x',
      'nodekubernetes.io/x',
    ]) {
      if (key === 'nodekubernetes.io/x') {
        // Not under kubernetes.io at all (no dot before it): allowed.
        assert.ok(parseCreateTokenRequest({ labels: { [key]: '' } }).labels);
        continue;
      }
      assertInvalid(
        () => parseCreateTokenRequest({ labels: { [key]: '' } }),
        ValidationError,
        'INVALID_REQUEST',
        refusal,
        new RegExp(
          `label ${JSON.stringify(key).replace(/[.]/g, '\\.')} is in the kubernetes\\.io/k8s\\.io namespace`,
        ),
        /NodeRestriction/,
      );
    }
  });

  void it('refuses node-restriction.kubernetes.io labels: only an admin may set them', () => {
    for (const key of ['node-restriction.kubernetes.io/dedicated', 'a.node-restriction.kubernetes.io/x']) {
      assertInvalid(
        () => parseCreateTokenRequest({ labels: { [key]: 'x' } }),
        ValidationError,
        'INVALID_REQUEST',
        refusal,
        /is in node-restriction\.kubernetes\.io, which kubelets may never set/,
      );
    }
  });
});

void describe('TokenInfo and CreatedToken', () => {
  const info = {
    id: 'abc123',
    expiresAt: '2030-01-01T00:00:00Z',
    usesLeft: null,
    usesTotal: 0,
    revoked: false,
    createdAt: '2029-12-31T23:00:00Z',
  };
  const secret = '0123456789abcdefghijklmnopqrstuv';

  void it('parses a listing entry and an unlimited-use token', () => {
    assert.deepEqual(parseTokenInfo(info), info);
    assert.deepEqual(
      parseTokenInfo({ ...info, usesLeft: 3, usesTotal: 5, nodeName: 'n1', description: 'x' }).usesLeft,
      3,
    );
    assertInvalid(
      () => parseTokenInfo({ ...info, id: 'toolong1' }),
      JoinError,
      'SERVER_ERROR',
      /id: must be a 6-character token id/,
    );
    assertInvalid(() => parseTokenInfo({ ...info, usesLeft: -1 }), JoinError, 'SERVER_ERROR', /usesLeft/);
    assertInvalid(
      () => parseTokenInfo({ ...info, revoked: 'no' }),
      JoinError,
      'SERVER_ERROR',
      /revoked must be boolean/,
    );
  });

  void it('parses a created token, and a malformed token never appears in the message', () => {
    const created = { ...info, token: `abc123.${secret}`, joinCommand: `k8s-join --token abc123.${secret}` };
    assert.deepEqual(parseCreatedToken(created), created);
    assert.equal(CreatedTokenSchema.safeParse(created).success, true);
    const bad = `${secret}X`;
    const message = assertInvalid(
      () => parseCreatedToken({ ...created, token: `abc123.${bad}` }),
      JoinError,
      'SERVER_ERROR',
      /token: Invalid join token: the secret part/,
    );
    assert.ok(!message.includes(secret));
  });
});

void describe('error bodies', () => {
  void it('renders an error with its code, message and hint, and parses it back', () => {
    const err = new JoinError('TOKEN_EXPIRED', 'join token abc123 expired at 2030-01-01T00:00:00Z', {
      hint: 'ask for a new token',
    });
    const body = errorBody(err);
    assert.deepEqual(body, {
      apiVersion: JOIN_API_VERSION,
      kind: 'Error',
      code: 'TOKEN_EXPIRED',
      message: 'join token abc123 expired at 2030-01-01T00:00:00Z',
      hint: 'ask for a new token',
    });
    const parsed = parseErrorBody(JSON.parse(JSON.stringify(body)));
    assert.deepEqual(parsed, body);
    const back = errorFromBody(parsed);
    assert.ok(back instanceof JoinError);
    assert.equal(back.code, 'TOKEN_EXPIRED');
    assert.equal(httpStatusOf(back), 401);
    assert.equal(back.hint, 'ask for a new token');
    assert.equal(errorBody(new ValidationError('INVALID_NODE_NAME', 'x')).hint, undefined);
  });

  void it('maps a code this version does not know to SERVER_ERROR, keeping it in the message', () => {
    const back = errorFromBody({
      apiVersion: JOIN_API_VERSION,
      kind: 'Error',
      code: 'QUOTA_EXCEEDED',
      message: 'too many nodes',
    });
    assert.equal(back.code, 'SERVER_ERROR');
    assert.equal(back.message, 'QUOTA_EXCEEDED: too many nodes');
  });

  void it('gives every error code an HTTP status, and the statuses clients act on', () => {
    for (const code of ERROR_CODES) {
      const status = HTTP_STATUS_BY_CODE[code];
      assert.ok(Number.isInteger(status) && status >= 400 && status < 600, `${code}: ${status}`);
    }
    assert.equal(httpStatusOf({ code: 'TOKEN_REJECTED' }), 401);
    assert.equal(httpStatusOf({ code: 'RATE_LIMITED' }), 429);
    assert.equal(httpStatusOf({ code: 'BODY_TOO_LARGE' }), 413);
    assert.equal(httpStatusOf({ code: 'UPSTREAM_ERROR' }), 503);
    assert.equal(httpStatusOf({ code: 'INVALID_REQUEST' }), 400);
  });

  void it('rejects bodies that are not error bodies', () => {
    assertInvalid(
      () => parseErrorBody('<html>502 Bad Gateway</html>'),
      JoinError,
      'SERVER_ERROR',
      /must be object, got string/,
    );
    assertInvalid(
      () => parseErrorBody({ apiVersion: JOIN_API_VERSION, kind: 'Error', code: 'lower case', message: 'm' }),
      JoinError,
      'SERVER_ERROR',
      /code: must be an UPPER_SNAKE error code/,
    );
    assertInvalid(
      () => parseErrorBody({ apiVersion: JOIN_API_VERSION, kind: 'Error', code: 'X' }),
      JoinError,
      'SERVER_ERROR',
      /message is required/,
    );
  });
});
