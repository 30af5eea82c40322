import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseForwardFlags, parseUpstreamsList } from '../../src/forward/forward-flags.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const files: Record<string, string> = {
  '/etc/k8s-join/ca.crt': CA,
  '/etc/k8s-join/upstreams': '10.0.0.1:6443\n',
};
const readFile = (path: string): Promise<string> => {
  const text = files[path];
  return text === undefined
    ? Promise.reject(Object.assign(new Error('missing'), { code: 'ENOENT' }))
    : Promise.resolve(text);
};

describe('parseUpstreamsList', () => {
  it('skips blank lines and comments and names the line of a bad entry', () => {
    assert.deepEqual(parseUpstreamsList('# apiservers\n\n10.0.0.1:6443  # a\n[fd00::2]:6443\n', '/u'), [
      { host: '10.0.0.1', port: 6443 },
      { host: 'fd00::2', port: 6443 },
    ]);
    assert.throws(() => parseUpstreamsList('10.0.0.1:6443\nnope\n', '/u'), /line 2 of --upstreams-file \/u/);
    assert.throws(() => parseUpstreamsList('# nothing\n', '/u'), /to list at least one HOST:PORT, got none/);
  });
});

describe('parseForwardFlags', () => {
  it('reads --upstreams-file and the https check CA through the given reader, with defaults', async () => {
    const config = await parseForwardFlags(
      [
        '--listen',
        '127.0.0.1:0',
        '--upstreams-file',
        '/etc/k8s-join/upstreams',
        '--health-check',
        'https',
        '--ca-file',
        '/etc/k8s-join/ca.crt',
      ],
      readFile,
    );
    assert.notEqual(config, 'help');
    if (config === 'help') return;
    assert.deepEqual(config.forwarder.upstreams, [{ host: '10.0.0.1', port: 6443 }]);
    assert.deepEqual(config.forwarder.healthCheck, { kind: 'https', ca: CA });
    assert.equal(config.upstreamsFile, '/etc/k8s-join/upstreams');
    assert.equal(config.forwarder.connectTimeoutMs, 5000);
    assert.equal(config.forwarder.maxConnections, 4096);
    assert.equal(config.drainTimeoutMs, 30_000);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.forwarder));
  });

  it('refuses --ca-file without the https check and both upstream sources at once', async () => {
    await assert.rejects(
      parseForwardFlags(
        ['--listen', '127.0.0.1:0', '--upstream', '10.0.0.1:6443', '--ca-file', '/x'],
        readFile,
      ),
      /--ca-file is only used with --health-check https/,
    );
    await assert.rejects(
      parseForwardFlags(
        [
          '--listen',
          '127.0.0.1:0',
          '--upstream',
          '10.0.0.1:6443',
          '--upstreams-file',
          '/etc/k8s-join/upstreams',
        ],
        readFile,
      ),
      /either --upstream \(repeatable\) or --upstreams-file, not both/,
    );
  });
});
