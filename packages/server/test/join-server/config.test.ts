import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import {
  ValidationError,
  caCertHash,
  createCertificateAuthority,
  issueCertificate,
  parseJoinBundle,
  type CertifiedKeyPair,
} from '@k8s-on-k8s/shared';
import { renderJoinBundle } from '../../src/join-server/bundle.js';
import {
  parseJoinServerFlags,
  parseTokenStoreSpec,
  type JoinServerConfig,
} from '../../src/join-server/config.js';

describe('k8s-join-server flags', () => {
  let ca: CertifiedKeyPair;
  let serving: CertifiedKeyPair;
  let otherServing: CertifiedKeyPair;
  let files: Record<string, string>;
  const read = (path: string): Promise<string> => {
    const text = files[path];
    return text === undefined ? Promise.reject(new Error(`ENOENT: ${path}`)) : Promise.resolve(text);
  };
  const BASE = ['--tls-cert', 'tls.crt', '--tls-key', 'tls.key', '--ca-cert', 'ca.crt'];

  before(async () => {
    ca = await createCertificateAuthority('cluster-ca');
    const other = await createCertificateAuthority('other-ca');
    serving = await issueCertificate(ca, { commonName: 'join', ipAddresses: ['127.0.0.1'], usage: 'server' });
    otherServing = await issueCertificate(other, { commonName: 'join', usage: 'server' });
    files = {
      'tls.crt': serving.certPem,
      'tls.key': serving.keyPem,
      'ca.crt': ca.certPem,
      'other.crt': otherServing.certPem,
    };
  });

  async function parse(extra: string[] = []): Promise<JoinServerConfig> {
    const config = await parseJoinServerFlags([...BASE, ...extra], read);
    assert.notEqual(config, 'help');
    return config as JoinServerConfig;
  }

  async function rejects(argv: string[], message: RegExp): Promise<void> {
    await assert.rejects(
      parseJoinServerFlags(argv, read),
      (e: unknown) => e instanceof ValidationError && message.test(e.message),
    );
  }

  it('applies the documented defaults and appends the CA to the presented chain', async () => {
    const config = await parse();
    assert.equal(config.apiEndpoint, 'https://10.199.199.199:443');
    assert.equal(config.clusterDns, '10.3.0.10');
    assert.equal(config.clusterDomain, 'cluster.local');
    assert.equal(config.kubernetesVersion, 'v1.37.2');
    assert.equal(config.bootstrapTokenTtlMs, 15 * 60_000);
    assert.equal(config.maxTokenTtlMs, 24 * 3_600_000);
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8443 });
    assert.deepEqual(config.store, { kind: 'file', path: '/var/lib/k8s-join-server/tokens.json' });
    assert.equal(config.kubeconfig, undefined, 'no --kubeconfig means in-cluster config');
    assert.equal(config.caCertHash, caCertHash(ca.certPem));
    assert.ok(config.tls.certChainPem.startsWith(serving.certPem.trim()));
    assert.ok(config.tls.certChainPem.includes(ca.certPem.trim()));
    assert.ok(Object.isFrozen(config));
  });

  it('reads repeatable --upstream and the other settings', async () => {
    const config = await parse([
      '--upstream',
      'api.example.com:6443',
      '--upstream',
      '[fd00::1]:6443',
      '--store',
      'kubernetes',
      '--cluster-dns',
      '10.96.0.10',
      '--bootstrap-token-ttl',
      '5m',
      '--max-token-ttl',
      '2h',
      '--rate-limit-per-ip',
      '0',
    ]);
    assert.deepEqual(config.upstreams, ['api.example.com:6443', '[fd00::1]:6443']);
    assert.deepEqual(config.store, { kind: 'kubernetes' });
    assert.equal(config.clusterDns, '10.96.0.10');
    assert.equal(config.bootstrapTokenTtlMs, 300_000);
    assert.equal(config.maxTokenTtlMs, 7_200_000);
    assert.equal(config.ratePerIp.perSecond, 0);
  });

  it('names the flag and the value in every error', async () => {
    await rejects([], /Missing --tls-cert/);
    await rejects(
      ['--tls-cert', 'missing.crt', '--tls-key', 'tls.key', '--ca-cert', 'ca.crt'],
      /Cannot read --tls-cert "missing.crt"/,
    );
    await rejects(
      ['--tls-cert', 'other.crt', '--tls-key', 'tls.key', '--ca-cert', 'ca.crt'],
      /--tls-cert "other.crt" to be signed by --ca-cert "ca.crt"/,
    );
    await rejects(
      [...BASE, '--store', 'sqlite:/x'],
      /--store to be file:PATH or kubernetes, got "sqlite:\/x"/,
    );
    await rejects([...BASE, '--max-token-ttl', 'forever'], /--max-token-ttl.*"forever"/);
    await rejects([...BASE, '--bootstrap-token-ttl', '0s'], /--bootstrap-token-ttl to be longer than 0s/);
    await rejects(
      [...BASE, '--cluster-dns', 'dns.local'],
      /--cluster-dns to be an IP address, got "dns.local"/,
    );
    await rejects(
      [...BASE, '--api-endpoint', 'https://api.example.com'],
      /--api-endpoint to be https:\/\/IP\[:PORT\] .*, got "https:\/\/api.example.com"/,
    );
    await rejects([...BASE, '--upstream', 'nohost'], /--upstream to be HOST:PORT/);
    await rejects([...BASE, '--rate-limit-per-ip', 'lots'], /--rate-limit-per-ip.*"lots"/);
    await rejects([...BASE, '--frobnicate'], /frobnicate/);
  });

  it('takes an --api-endpoint exactly when an agent would take it in a bundle', async () => {
    const inBundle = (endpoint: string): boolean => {
      const bundle = renderJoinBundle({
        cluster: {
          apiEndpoint: endpoint,
          upstreams: ['api.example.com:6443'],
          clusterDns: '10.3.0.10',
          clusterDomain: 'cluster.local',
          kubernetesVersion: 'v1.37.2',
        },
        caPem: ca.certPem,
        nodeName: 'worker-1',
        bootstrapToken: 'abcdef.0123456789abcdef',
        bootstrapTokenExpiresAt: new Date('2030-01-01T00:15:00Z'),
        serverTime: new Date('2030-01-01T00:00:00Z'),
      });
      try {
        parseJoinBundle(bundle);
        return true;
      } catch {
        return false;
      }
    };
    const byServer = async (endpoint: string): Promise<boolean> =>
      parseJoinServerFlags([...BASE, '--api-endpoint', endpoint], read).then(
        () => true,
        () => false,
      );
    const accepted: string[] = [];
    for (const endpoint of [
      'https://10.199.199.199:443',
      'https://10.199.199.199',
      'https://10.199.199.199:6443/',
      'https://[fd00::1]:443',
      'https://api.example.com:443',
      'https://api.example.com',
      'https://localhost:6443',
      'http://10.199.199.199:443',
      'https://10.199.199.199:443/path',
      'https://10.199.199.199:443?x',
      'https://u@10.199.199.199:443',
      'https://10.199.199.199:0',
      'https://10.199.199.199:65536',
      'https://10.0.0.1;touch:443',
      'https://010.199.199.199',
      ' https://10.199.199.199',
    ]) {
      assert.equal(await byServer(endpoint), inBundle(endpoint), endpoint);
      if (inBundle(endpoint)) accepted.push(endpoint);
    }
    assert.deepEqual(accepted, [
      'https://10.199.199.199:443',
      'https://10.199.199.199',
      'https://10.199.199.199:6443/',
      'https://[fd00::1]:443',
    ]);
  });

  it('parses store specs', () => {
    assert.deepEqual(parseTokenStoreSpec('file:/data/t.json'), { kind: 'file', path: '/data/t.json' });
    assert.throws(() => parseTokenStoreSpec('file:'), /--store/);
  });
});
