// What the agent accepts from a join server that passed the pin: the join command against a real
// HTTPS server with real certificates, on a temp root, with a systemctl fixture on PATH.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { renderKubeconfig, type CertifiedKeyPair } from '@k8s-on-k8s/shared';
import { joinExitCode, runJoinCommand } from '../../src/join/join-command.js';
import {
  createCas,
  createJoinRoot,
  goodBundle,
  joinArgs,
  joinDeps,
  startJoinServerStub,
  type JoinServerStub,
} from './join-server-stub.js';

/** Runs a join against a stub answering `bundle`; returns the exit code, output and root. */
async function joinWith(
  ca: CertifiedKeyPair,
  bundle: unknown,
): Promise<{ code: number; error: unknown; lines: string[]; root: string; stub: JoinServerStub }> {
  const stub = await startJoinServerStub(ca, [{ status: 200, body: bundle }]);
  const joinRoot = await createJoinRoot();
  cleanups.push(() => stub.stop(), joinRoot.cleanup);
  const deps = joinDeps();
  try {
    const code = await runJoinCommand(joinArgs(stub, joinRoot.root), deps);
    return { code, error: undefined, lines: deps.lines, root: joinRoot.root, stub };
  } catch (error) {
    return { code: joinExitCode(error), error, lines: deps.lines, root: joinRoot.root, stub };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.message} ${(error as { hint?: string }).hint ?? ''}` : '';
}

async function assertNothingWritten(root: string): Promise<void> {
  assert.deepEqual(await readdir(root), [], 'nothing written under the root');
}

/** The join server's rendered KubeletConfiguration (packages/server, renderKubeletConfiguration). */
const SERVER_KUBELET_CONFIG = new URL(
  '../../../../server/test/fixtures/kubelet-config.golden.yaml',
  import.meta.url,
);

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('k8s-join join trusts the pin, not the bundle', () => {
  let ca: CertifiedKeyPair;
  let other: CertifiedKeyPair;
  before(async () => {
    ({ ca, other } = await createCas());
  });

  it('joins with a bundle whose CA and kubeconfig are the pinned CA', async () => {
    const run = await joinWith(ca, goodBundle(ca));
    assert.equal(run.code, 0, messageOf(run.error));
    const written = await readFile(join(run.root, 'etc/kubernetes/pki/ca.crt'), 'utf8');
    assert.equal(written.trim(), ca.certPem.trim());
  });

  it('refuses a bundle whose caCert is another CA: exit 4, nothing written', async () => {
    const run = await joinWith(ca, goodBundle(ca, { caCert: other.certPem }));
    assert.equal(run.code, 4, messageOf(run.error));
    assert.match(messageOf(run.error), /caCert .*is not the CA the server was pinned to/);
    await assertNothingWritten(run.root);
  });

  it('refuses a bootstrap kubeconfig that trusts another CA or none: exit 4, nothing written', async () => {
    const endpoint = 'https://10.199.199.199:443';
    const otherCaKubeconfig = renderKubeconfig({
      clusterName: 'kubernetes',
      server: endpoint,
      caPem: other.certPem,
      userName: 'u',
      credentials: { token: 'bbbbbb.0123456789abcdef' },
    });
    const insecure = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: k',
      '  cluster:',
      `    server: ${endpoint}`,
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: u',
      '  user:',
      '    token: bbbbbb.0123456789abcdef',
      'contexts:',
      '- name: c',
      '  context: {cluster: k, user: u}',
      'current-context: c',
      '',
    ].join('\n');
    for (const [kubeconfig, pattern] of [
      [
        otherCaKubeconfig,
        /bootstrapKubeconfig's certificate-authority-data is not the CA the server was pinned to/,
      ],
      [insecure, /bootstrapKubeconfig .*no certificate-authority-data|insecure-skip-tls-verify/],
    ] as const) {
      const run = await joinWith(ca, goodBundle(ca, { bootstrapKubeconfig: kubeconfig }));
      assert.equal(run.code, 4, messageOf(run.error));
      assert.match(messageOf(run.error), pattern);
      assert.ok(!messageOf(run.error).includes('bbbbbb.0123456789abcdef'), 'no credential in the error');
      await assertNothingWritten(run.root);
    }
  });

  it('refuses a kubeletConfig that weakens the kubelet API, naming the field; nothing written', async () => {
    const base = (goodBundle(ca) as { kubeletConfig: Record<string, unknown> }).kubeletConfig;
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { authentication: { anonymous: { enabled: true } } },
        /kubeletConfig\.authentication\.anonymous\.enabled/,
      ],
      [{ authorization: { mode: 'AlwaysAllow' } }, /kubeletConfig\.authorization\.mode.*"AlwaysAllow"/],
      [{ readOnlyPort: 10255 }, /kubeletConfig\.readOnlyPort.*10255/],
      [{ staticPodURL: 'http://198.51.100.1/pods.yaml' }, /kubeletConfig\.staticPodURL/],
      [{ tlsMinVersion: 'VersionTLS10' }, /kubeletConfig\.tlsMinVersion.*"VersionTLS10"/],
    ];
    for (const [weakening, pattern] of cases) {
      const run = await joinWith(ca, goodBundle(ca, { kubeletConfig: { ...base, ...weakening } }));
      assert.equal(run.code, 1, messageOf(run.error));
      assert.equal((run.error as { code?: string }).code, 'INVALID_BUNDLE');
      assert.match(messageOf(run.error), pattern);
      await assertNothingWritten(run.root);
    }
  });

  it('takes only the kubeletConfig fields the join server renders; any other is refused by name', async () => {
    const base = (goodBundle(ca) as { kubeletConfig: Record<string, unknown> }).kubeletConfig;
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { featureGates: { AllAlpha: true } },
        /kubeletConfig\.featureGates \(\{"AllAlpha":true\}\) is not a field/,
      ],
      [{ allowedUnsafeSysctls: ['kernel.*'] }, /kubeletConfig\.allowedUnsafeSysctls .*is not a field/],
      [{ staticPodPath: '/tmp/pods' }, /kubeletConfig\.staticPodPath \("\/tmp\/pods"\) is not a field/],
      [{ tlsCipherSuites: ['TLS_RSA_WITH_RC4_128_SHA'] }, /kubeletConfig\.tlsCipherSuites .*is not a field/],
      // Even a strengthening: the server has no business with the kubelet's TLS or ports.
      [{ tlsMinVersion: 'VersionTLS13' }, /kubeletConfig\.tlsMinVersion/],
      [{ readOnlyPort: 0 }, /kubeletConfig\.readOnlyPort/],
      [{ protectKernelDefaults: false }, /kubeletConfig\.protectKernelDefaults \(false\) is not a field/],
      [{ enableDebuggingHandlers: true }, /kubeletConfig\.enableDebuggingHandlers/],
      [
        { authentication: { x509: { clientCAFile: '/etc/ssl/certs/ca-certificates.crt' } } },
        /kubeletConfig\.authentication\.x509\.clientCAFile is "\/etc\/ssl\/certs\/ca-certificates\.crt": must be "\/etc\/kubernetes\/pki\/ca\.crt"/,
      ],
      [
        { authentication: { webhook: { enabled: true, cacheTTL: '24h' } } },
        /kubeletConfig\.authentication\.webhook\.cacheTTL is "24h": must be at most 2m/,
      ],
      [
        { authorization: { mode: 'Webhook', webhook: { cacheAuthorizedTTL: '1h' } } },
        /kubeletConfig\.authorization\.webhook\.cacheAuthorizedTTL is "1h": must be at most 5m/,
      ],
      [
        { authentication: { anonymous: { enabled: false, extra: 1 } } },
        /anonymous\.extra \(1\) is not a field/,
      ],
      [{ authorization: 'Webhook' }, /kubeletConfig\.authorization is "Webhook": must be an object/],
      [{ rotateCertificates: false }, /kubeletConfig\.rotateCertificates is false: must be true/],
    ];
    for (const [weakening, pattern] of cases) {
      const run = await joinWith(ca, goodBundle(ca, { kubeletConfig: { ...base, ...weakening } }));
      assert.equal(run.code, 1, messageOf(run.error));
      assert.equal((run.error as { code?: string }).code, 'INVALID_BUNDLE');
      assert.match(messageOf(run.error), pattern);
      assert.match(messageOf(run.error), /takes from the join server only authentication, authorization,/);
      await assertNothingWritten(run.root);
    }
  });

  it('joins with everything the join server renders, serverTLSBootstrap either way', async () => {
    // The join server's own rendering, reviewed as its golden file: what the agent must take.
    const rendered = parseYaml(await readFile(SERVER_KUBELET_CONFIG, 'utf8')) as Record<string, unknown>;
    for (const serverTLSBootstrap of [false, true]) {
      const kubeletConfig = { ...rendered, serverTLSBootstrap };
      const run = await joinWith(ca, goodBundle(ca, { kubeletConfig }));
      assert.equal(run.code, 0, messageOf(run.error));
      const written = parseYaml(await readFile(join(run.root, 'var/lib/kubelet/config.yaml'), 'utf8')) as {
        serverTLSBootstrap: boolean;
      };
      assert.equal(written.serverTLSBootstrap, serverTLSBootstrap);
    }
  });

  it('writes the secure kubelet settings even when the server leaves them out', async () => {
    const bare = { apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration' };
    const run = await joinWith(ca, goodBundle(ca, { kubeletConfig: bare }));
    assert.equal(run.code, 0, messageOf(run.error));
    const config = parseYaml(await readFile(join(run.root, 'var/lib/kubelet/config.yaml'), 'utf8')) as {
      authentication: { anonymous: { enabled: boolean }; webhook: { enabled: boolean } };
      authorization: { mode: string };
      readOnlyPort: number;
    };
    assert.equal(config.authentication.anonymous.enabled, false);
    assert.equal(config.authorization.mode, 'Webhook');
    assert.equal(config.readOnlyPort, 0);
  });

  it('refuses an endpoint host that is not an IP literal before it reaches a unit, naming the field', async () => {
    for (const endpoint of [
      'https://10.0.0.1;touch:443',
      'https://a$b:443',
      'https://api.example.com:443',
      'https://10.0.0.1:443/path',
      'https://u@10.0.0.1:443',
    ]) {
      const run = await joinWith(ca, goodBundle(ca, { endpoint }));
      assert.equal(run.code, 1, `${endpoint}: ${messageOf(run.error)}`);
      assert.equal((run.error as { code?: string }).code, 'INVALID_BUNDLE', endpoint);
      assert.match(messageOf(run.error), /apiServer\.endpoint/, endpoint);
      await assertNothingWritten(run.root);
    }
  });

  it('refuses upstream hosts with spaces, quotes, ; $ or % specifiers, naming the field', async () => {
    for (const upstream of [
      'a b:6443',
      'a"b:6443',
      'a;b:6443',
      '$HOME:6443',
      '%H:6443',
      'a\nExecStart=x:1',
    ]) {
      const run = await joinWith(ca, goodBundle(ca, { apiServer: { upstreams: [upstream] } }));
      assert.equal(run.code, 1, messageOf(run.error));
      assert.match(messageOf(run.error), /apiServer\.upstreams\[0\]/);
      await assertNothingWritten(run.root);
    }
  });

  it('an endpoint on port 6443: the forwarder listens there and the kubeconfig says so', async () => {
    const run = await joinWith(ca, goodBundle(ca, { endpoint: 'https://10.199.199.199:6443' }));
    assert.equal(run.code, 0, messageOf(run.error));
    const unit = await readFile(join(run.root, 'etc/systemd/system/k8s-join-forwarder.service'), 'utf8');
    assert.match(unit, /^ExecStart=\/opt\/bin\/k8s-join forward --listen=10\.199\.199\.199:6443 /m);
    assert.match(unit, /^ExecStartPre=ip addr replace 10\.199\.199\.199\/32 dev lo$/m);
    const kubeconfig = await readFile(join(run.root, 'etc/kubernetes/bootstrap-kubelet.conf'), 'utf8');
    assert.match(kubeconfig, /server: https:\/\/10\.199\.199\.199:6443/);
    assert.equal(
      await readFile(join(run.root, 'etc/k8s-join/upstreams'), 'utf8').then((t) => t.split('\n')[1]),
      '192.0.2.10:6443',
    );
  });

  it('refuses a bootstrap kubeconfig whose server is not the endpoint the forwarder serves', async () => {
    const kubeconfig = renderKubeconfig({
      clusterName: 'kubernetes',
      server: 'https://203.0.113.9:443',
      caPem: ca.certPem,
      userName: 'u',
      credentials: { token: 'bbbbbb.0123456789abcdef' },
    });
    const run = await joinWith(ca, goodBundle(ca, { bootstrapKubeconfig: kubeconfig }));
    assert.equal(run.code, 1, messageOf(run.error));
    assert.match(messageOf(run.error), /server https:\/\/203\.0\.113\.9:443 is not apiServer\.endpoint/);
    await assertNothingWritten(run.root);
  });
});
