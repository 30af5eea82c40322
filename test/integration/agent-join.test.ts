import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { caCertHash, type CertifiedKeyPair } from '@k8s-on-k8s/shared';
import {
  callJoinServer,
  startJoinTestbed,
  VIP,
  type InProcessJoinServer,
  type JoinTestbed,
  type LocalKubeCluster,
  type WorkerHost,
} from '../harness/index.js';

// The agent, unmodified (the single executable), inside a worker host with systemd as PID 1, joins
// through a real join server to a real apiserver. Both are exposed inside a control-plane network
// namespace (the role of the infra cluster's NodePort); the worker reaches them over a veth pair.

interface TokenInfoLike {
  id: string;
  usesLeft: number | null;
}

describe('k8s-join in a real systemd worker host', () => {
  let bed: JoinTestbed;
  let cp: LocalKubeCluster;
  let worker: WorkerHost;
  let server: InProcessJoinServer;
  let admin: CertifiedKeyPair;
  let pin: string;

  const serverUrl = (): string => bed.serverUrl;
  const agent = (args: string[]) => worker.exec('/opt/bin/k8s-join', args, { timeoutMs: 120_000 });
  const mint = async (): Promise<{ token: string; id: string }> => {
    const answer = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      clientCert: admin,
      body: { ttl: '10m', uses: 1 },
    });
    assert.equal(answer.status, 201, answer.text);
    return answer.json() as { token: string; id: string };
  };
  const usesLeft = async (id: string): Promise<number | null | undefined> => {
    const answer = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      clientCert: admin,
    });
    const list = answer.json() as { items?: TokenInfoLike[] } | TokenInfoLike[];
    const items = Array.isArray(list) ? list : (list.items ?? []);
    return items.find((t) => t.id === id)?.usesLeft;
  };
  const joinRequests = (): number => server.logs.filter((line) => line.includes('/v1/join')).length;

  before(async () => {
    bed = await startJoinTestbed({ name: 'agent-join', hostname: 'worker-1' });
    ({ cp, server, admin, worker } = bed);
    pin = caCertHash(cp.ca.certPem);
  });

  after(async () => {
    await bed.stop();
  });

  it('refuses a wrong pin with exit 4 and never sends the token', async () => {
    const { token, id } = await mint();
    await worker.writeFile('/root/token', `${token}\n`, 0o600);
    const before = joinRequests();
    const wrong = `sha256:${'0'.repeat(64)}`;
    const result = await agent([
      '--server',
      serverUrl(),
      '--ca-cert-hash',
      wrong,
      '--token-file',
      '/root/token',
      '--ignore-preflight-errors',
      'container-runtime',
    ]);
    assert.equal(result.exitCode, 4, result.stderr);
    assert.match(result.stderr, new RegExp(`the server presented CA with hash ${pin}, expected ${wrong}`));
    assert.equal(joinRequests(), before, 'the join server saw no join request');
    assert.equal(await usesLeft(id), 1, 'the token was not spent');
    assert.equal(
      await worker.exec('test', ['-e', '/etc/kubernetes/bootstrap-kubelet.conf']).then((r) => r.exitCode),
      1,
    );
  });

  it('joins: writes every file with its mode, starts the forwarder on the VIP and the kubelet', async () => {
    const { token, id } = await mint();
    await worker.writeFile('/root/token', `${token}\n`, 0o600);
    const result = await agent([
      '--server',
      serverUrl(),
      '--ca-cert-hash',
      pin,
      '--token-file',
      '/root/token',
      '--ignore-preflight-errors',
      'container-runtime',
      '--timeout',
      '0s',
    ]);
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /joined worker-1 to https:\/\/198\.18\.0\.1:8443 in/);
    assert.equal(await usesLeft(id), 0, 'the single-use token is spent');

    const modes = await worker.exec('stat', [
      '-c',
      '%n %a',
      '/etc/kubernetes/pki/ca.crt',
      '/etc/kubernetes/bootstrap-kubelet.conf',
      '/var/lib/kubelet/config.yaml',
      '/etc/systemd/system/k8s-join-forwarder.service',
      '/etc/systemd/system/kubelet.service',
      '/etc/systemd/system/kubelet.service.d/10-k8s-join.conf',
      '/var/lib/k8s-join/state.json',
    ]);
    assert.equal(
      modes.stdout.trim(),
      [
        '/etc/kubernetes/pki/ca.crt 644',
        '/etc/kubernetes/bootstrap-kubelet.conf 600',
        '/var/lib/kubelet/config.yaml 644',
        '/etc/systemd/system/k8s-join-forwarder.service 644',
        '/etc/systemd/system/kubelet.service 644',
        '/etc/systemd/system/kubelet.service.d/10-k8s-join.conf 644',
        '/var/lib/k8s-join/state.json 600',
      ].join('\n'),
    );
    assert.equal((await worker.readFile('/etc/kubernetes/pki/ca.crt')).trim(), cp.ca.certPem.trim());
    const bootstrap = await worker.readFile('/etc/kubernetes/bootstrap-kubelet.conf');
    assert.match(bootstrap, /token: [a-z0-9]{6}\.[a-z0-9]{16}/);
    assert.match(bootstrap, /server: https:\/\/10\.199\.199\.199:443/);
    assert.ok(!bootstrap.includes(token), 'the join token never lands on the node');
    assert.match(await worker.readFile('/etc/k8s-join/upstreams'), /^198\.18\.0\.1:6443$/m);

    const active = await worker.exec('systemctl', ['is-active', 'k8s-join-forwarder.service']);
    assert.equal(active.stdout.trim(), 'active');
    assert.equal(
      (
        await worker.exec('systemctl', ['is-enabled', 'k8s-join-forwarder.service', 'kubelet.service'])
      ).stdout.trim(),
      'enabled\nenabled',
    );
    assert.match(
      (await worker.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout,
      /inet 10\.199\.199\.199\/32/,
    );
    // Through the VIP and the forwarder to the real apiserver, verified with the node's CA file.
    const version = await worker.exec('curl', [
      '-sS',
      '--cacert',
      '/etc/kubernetes/pki/ca.crt',
      `https://${VIP}/version`,
    ]);
    assert.equal(version.exitCode, 0, version.stderr);
    assert.equal((JSON.parse(version.stdout) as { gitVersion: string }).gitVersion, 'v1.37.2');
    // The kubelet unit was started; whether it keeps running without a container runtime is the
    // end-to-end test's business. Record what it did.
    const kubelet = await worker.exec('systemctl', [
      'show',
      'kubelet.service',
      '-p',
      'ActiveState,NRestarts,ExecMainStartTimestampMonotonic',
    ]);
    assert.doesNotMatch(kubelet.stdout, /ExecMainStartTimestampMonotonic=0$/m, 'kubelet was started');
    console.log(`# kubelet after join: ${kubelet.stdout.replace(/\n/g, ' ')}`);
  });

  it('a second run is a no-op that spends no token', async () => {
    const before = await worker.exec('stat', [
      '-c',
      '%Y %i',
      '/etc/kubernetes/bootstrap-kubelet.conf',
      '/var/lib/kubelet/config.yaml',
    ]);
    const requests = joinRequests();
    const result = await agent([
      '--server',
      serverUrl(),
      '--ca-cert-hash',
      pin,
      '--token-file',
      '/root/token',
      '--ignore-preflight-errors',
      'container-runtime',
      '--timeout',
      '0s',
    ]);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /already joined to https:\/\/198\.18\.0\.1:8443 as worker-1/);
    assert.equal(joinRequests(), requests);
    const afterStat = await worker.exec('stat', [
      '-c',
      '%Y %i',
      '/etc/kubernetes/bootstrap-kubelet.conf',
      '/var/lib/kubelet/config.yaml',
    ]);
    assert.equal(afterStat.stdout, before.stdout, 'files untouched');
    assert.equal(
      (await worker.exec('systemctl', ['is-active', 'k8s-join-forwarder.service'])).stdout.trim(),
      'active',
    );
  });

  it('reset removes the units, the VIP and exactly the files join wrote', async () => {
    await worker.writeFile('/etc/kubernetes/mine.txt', 'not k8s-join\n');
    const result = await agent(['reset']);
    assert.equal(result.exitCode, 0, result.stderr);
    for (const path of [
      '/etc/kubernetes/pki/ca.crt',
      '/etc/kubernetes/bootstrap-kubelet.conf',
      '/var/lib/kubelet/config.yaml',
      '/etc/systemd/system/k8s-join-forwarder.service',
      '/etc/systemd/system/kubelet.service',
      '/etc/systemd/system/kubelet.service.d',
      '/var/lib/k8s-join',
      '/etc/k8s-join',
    ]) {
      assert.equal((await worker.exec('test', ['-e', path])).exitCode, 1, `${path} should be gone`);
    }
    assert.equal(
      await worker.readFile('/etc/kubernetes/mine.txt'),
      'not k8s-join\n',
      'files join did not write stay',
    );
    assert.doesNotMatch(
      (await worker.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout,
      /10\.199\.199\.199/,
    );
    const units = await worker.exec('systemctl', [
      'list-units',
      '--all',
      '--no-legend',
      'k8s-join-forwarder.service',
      'kubelet.service',
    ]);
    // "inactive" contains "active": match whole words.
    assert.doesNotMatch(units.stdout, /\b(active|activating)\b/);
    const again = await agent(['reset']);
    assert.match(again.stdout, /nothing to reset/);
  });
});

// The endpoint's port travels from the join server's --api-endpoint through the bundle to the
// forwarder's listener and the kubelet's kubeconfig; nothing on the worker assumes 443.
describe('k8s-join with the API endpoint on a port other than 443', () => {
  let bed: JoinTestbed;

  before(async () => {
    bed = await startJoinTestbed({
      name: 'agent-join-6443',
      hostname: 'worker-2',
      joinServerArgs: ['--api-endpoint', `https://${VIP}:6443`],
    });
  });

  after(async () => {
    await bed.stop();
  });

  it('listens on VIP:6443 and reaches the apiserver through it', async () => {
    const answer = await callJoinServer(`${bed.server.url}/v1/tokens`, {
      caPem: bed.cp.ca.certPem,
      clientCert: bed.admin,
      body: { ttl: '10m', uses: 1 },
    });
    assert.equal(answer.status, 201, answer.text);
    const { token } = answer.json() as { token: string };
    await bed.worker.writeFile('/root/token', `${token}\n`, 0o600);
    const result = await bed.worker.exec(
      '/opt/bin/k8s-join',
      [
        '--server',
        bed.serverUrl,
        '--ca-cert-hash',
        caCertHash(bed.cp.ca.certPem),
        '--token-file',
        '/root/token',
        '--ignore-preflight-errors',
        'container-runtime',
        '--timeout',
        '0s',
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /API https:\/\/10\.199\.199\.199:6443 via 198\.18\.0\.1:6443/);
    assert.match(
      await bed.worker.readFile('/etc/systemd/system/k8s-join-forwarder.service'),
      /^ExecStart=.* forward --listen=10\.199\.199\.199:6443 /m,
    );
    assert.match(
      await bed.worker.readFile('/etc/kubernetes/bootstrap-kubelet.conf'),
      /server: https:\/\/10\.199\.199\.199:6443/,
    );
    const version = await bed.worker.exec('curl', [
      '-sS',
      '--cacert',
      '/etc/kubernetes/pki/ca.crt',
      `https://${VIP}:6443/version`,
    ]);
    assert.equal(version.exitCode, 0, version.stderr);
    assert.equal((JSON.parse(version.stdout) as { gitVersion: string }).gitVersion, 'v1.37.2');
    const on443 = await bed.worker.exec('curl', [
      '-sS',
      '--max-time',
      '3',
      '--cacert',
      '/etc/kubernetes/pki/ca.crt',
      `https://${VIP}/version`,
    ]);
    assert.notEqual(on443.exitCode, 0, 'nothing listens on VIP:443');
    assert.equal((await bed.worker.exec('/opt/bin/k8s-join', ['reset'])).exitCode, 0);
  });
});
