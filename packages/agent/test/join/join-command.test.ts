import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ValidationError } from '@k8s-on-k8s/shared';
import { joinExitCode, runJoinCommand, type JoinCommandDeps } from '../../src/join/join-command.js';
import { parseJoinFlags } from '../../src/join/join-flags.js';
import { createNodeSystem } from '../../src/node/node-system.js';

const TOKEN = 'abcdef.0123456789abcdef0123456789abcdef';
const HASH = `sha256:${'ab'.repeat(32)}`;
const root = mkdtempSync(join(tmpdir(), 'join-flags-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

function deps(
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): JoinCommandDeps & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    systemAt: createNodeSystem,
    env,
    out: (line) => lines.push(line),
    warn: (line) => lines.push(line),
    sleep: () => Promise.resolve(),
    selfCommand: ['/opt/bin/k8s-join'],
    readLocalFile: (path) => {
      const text = files[path];
      return text === undefined
        ? Promise.reject(Object.assign(new Error('missing'), { code: 'ENOENT' }))
        : Promise.resolve(text);
    },
  };
}

const base = ['--server', 'https://join.example:8443', '--ca-cert-hash', HASH, '--root', root];

describe('k8s-join join flags', () => {
  it('accepts a complete command line and normalises it', async () => {
    const config = await parseJoinFlags([...base, '--token', TOKEN, '--node-name', 'worker-1'], deps());
    assert.notEqual(config, 'help');
    if (config === 'help') return;
    assert.equal(config.serverUrl.origin, 'https://join.example:8443');
    assert.equal(config.caCertHash, HASH);
    assert.equal(config.nodeName, 'worker-1');
    assert.equal(config.kubeletBinary, '/opt/bin/kubelet');
    assert.deepEqual(config.agentBinary, ['/opt/bin/k8s-join']);
    assert.equal(config.timeoutMs, 120_000);
  });

  it('reads the token from --token-file or K8S_JOIN_TOKEN, exactly one source', async () => {
    const fromFile = await parseJoinFlags(
      [...base, '--token-file', '/t', '--node-name', 'w'],
      deps({}, { '/t': `${TOKEN}\n` }),
    );
    assert.equal(fromFile !== 'help' && fromFile.token, TOKEN);
    const fromEnv = await parseJoinFlags([...base, '--node-name', 'w'], deps({ K8S_JOIN_TOKEN: TOKEN }));
    assert.equal(fromEnv !== 'help' && fromEnv.token, TOKEN);
    await assert.rejects(parseJoinFlags([...base, '--node-name', 'w'], deps()), /Missing the join token/);
    await assert.rejects(
      parseJoinFlags([...base, '--token', TOKEN, '--node-name', 'w'], deps({ K8S_JOIN_TOKEN: TOKEN })),
      /exactly once/,
    );
    await assert.rejects(
      parseJoinFlags([...base, '--token-file', '/nope', '--node-name', 'w'], deps()),
      /Cannot read --token-file "\/nope": ENOENT/,
    );
  });

  it('never echoes a malformed token', async () => {
    const bad = 'abcdef.0123456789ABCDEF0123456789abcdef';
    await assert.rejects(
      parseJoinFlags([...base, '--token', bad, '--node-name', 'w'], deps()),
      (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.ok(!error.message.includes('0123456789ABCDEF'));
        return true;
      },
    );
  });

  it('requires a pin unless --unsafe-skip-ca-verification, and not both', async () => {
    const noPin = ['--server', 'https://j:1', '--token', TOKEN, '--node-name', 'w', '--root', root];
    await assert.rejects(parseJoinFlags(noPin, deps()), /Missing --ca-cert-hash/);
    const skipped = await parseJoinFlags([...noPin, '--unsafe-skip-ca-verification'], deps());
    assert.equal(skipped !== 'help' && skipped.caCertHash, undefined);
    await assert.rejects(
      parseJoinFlags([...noPin, '--unsafe-skip-ca-verification', '--ca-cert-hash', HASH], deps()),
      /not both/,
    );
    await assert.rejects(parseJoinFlags([...noPin, '--ca-cert-hash', 'sha256:xyz'], deps()), {
      code: 'INVALID_CA_HASH',
    });
  });

  it('rejects non-https or path-carrying server URLs', async () => {
    for (const server of ['http://j:1', 'https://j:1/v1', 'j:1', 'https://user@j:1']) {
      await assert.rejects(
        parseJoinFlags(
          ['--server', server, '--ca-cert-hash', HASH, '--token', TOKEN, '--node-name', 'w'],
          deps(),
        ),
        /--server/,
        server,
      );
    }
  });

  it('refuses node names with /, .., newlines or % before anything is written', async () => {
    for (const name of ['a/b', '..', 'a\nb', 'a%b', 'Worker', '-w', '']) {
      const d = deps();
      await assert.rejects(
        runJoinCommand([...base, '--token', TOKEN, `--node-name=${name}`], d),
        (error: unknown) => {
          assert.ok(error instanceof ValidationError, name);
          assert.equal(error.code, 'INVALID_NODE_NAME');
          assert.equal(joinExitCode(error), 2);
          return true;
        },
      );
      assert.deepEqual(readdirSync(root), [], `nothing written for ${JSON.stringify(name)}`);
    }
  });

  it('validates the other flags naming flag and value', async () => {
    const ok = [...base, '--token', TOKEN, '--node-name', 'w'];
    await assert.rejects(
      parseJoinFlags([...ok, '--timeout', 'soon'], deps()),
      /Expected --timeout to be a duration/,
    );
    await assert.rejects(parseJoinFlags([...ok, '--ignore-preflight-errors', 'swap'], deps()), /got "swap"/);
    await assert.rejects(
      parseJoinFlags([...ok, '--kubelet-binary', 'kubelet'], deps()),
      /--kubelet-binary to be an absolute path/,
    );
    await assert.rejects(
      parseJoinFlags([...ok, '--container-runtime-endpoint', 'tcp://x'], deps()),
      /unix:\/\/\//,
    );
    await assert.rejects(parseJoinFlags([...ok, '--bogus'], deps()), /bogus/);
    for (const bad of ['0', '251', '1e2', '-5', 'many']) {
      await assert.rejects(
        parseJoinFlags([...ok, `--max-pods=${bad}`], deps()),
        new RegExp(`Expected --max-pods to be a whole number from 1 to 250 .*got "${bad}"`),
      );
    }
  });

  it('--max-pods is the kubelet maxPods; without it the kubelet keeps its default', async () => {
    const ok = [...base, '--token', TOKEN, '--node-name', 'w'];
    const config = await parseJoinFlags([...ok, '--max-pods', '200'], deps());
    assert.ok(config !== 'help');
    assert.equal(config.maxPods, 200);
    const without = await parseJoinFlags(ok, deps());
    assert.ok(without !== 'help');
    assert.equal(without.maxPods, undefined);
  });

  it('prints help that teaches the flow', async () => {
    const d = deps();
    assert.equal(await runJoinCommand(['--help'], d), 0);
    assert.match(d.lines.join('\n'), /--ca-cert-hash sha256:HEX/);
    assert.match(d.lines.join('\n'), /Exit codes/);
  });
});
