import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  renderCloudConfig,
  renderIgnition,
  renderJoinUnit,
  type UserDataSpec,
} from '../../src/user-data/render.js';
import { runUserDataCommand } from '../../src/cli/userdata.js';

const TOKEN = 'abcdef.0123456789abcdef0123456789abcdef';
const SPEC: UserDataSpec = {
  server: 'https://join.example.com:8443',
  caCertHash: `sha256:${'ab'.repeat(32)}`,
  token: TOKEN,
  agentUrl: 'https://downloads.example.com/k8s-join-linux-x64',
  agentSha256: 'cd'.repeat(32),
  extraJoinArgs: ['--wait'],
};
const fixtures = new URL('../../../test/fixtures/', import.meta.url);
const ignitionValidate = fileURLToPath(
  new URL('../../../../../.cache/bin/ignition-validate', import.meta.url),
);
const dir = mkdtempSync(join(tmpdir(), 'userdata-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function golden(name: string, actual: string): void {
  const path = new URL(name, fixtures);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs; review and rerun with UPDATE_GOLDEN=1`);
}

describe('cloud-config user-data', () => {
  const text = renderCloudConfig(SPEC);

  it('matches the golden file', () => {
    golden('user-data.cloud-config.yaml', text);
  });

  it("passes Debian's `cloud-init schema`", () => {
    const path = join(dir, 'user-data.yaml');
    writeFileSync(path, text);
    const output = execFileSync('cloud-init', ['schema', '--config-file', path], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
    assert.match(output, /Valid cloud-config/);
  });

  it('keeps the token in a 0600 file and off every command line', () => {
    const document = parseYaml(text.replace(/^#cloud-config\n/, '')) as {
      write_files: Array<{ path: string; permissions: string; content: string }>;
      runcmd: string[][];
    };
    const tokenFile = document.write_files.find((f) => f.path === '/etc/k8s-join/token');
    assert.deepEqual([tokenFile?.permissions, tokenFile?.content], ['0600', `${TOKEN}\n`]);
    assert.ok(!JSON.stringify(document.runcmd).includes(TOKEN));
    const unit =
      document.write_files.find((f) => f.path === '/etc/systemd/system/k8s-join.service')?.content ?? '';
    assert.match(unit, /--token-file=\/etc\/k8s-join\/token/);
    assert.ok(!unit.includes(TOKEN));
    assert.match(JSON.stringify(document.runcmd), /sha256sum -c/);
  });
});

describe('Ignition user-data', () => {
  const text = renderIgnition(SPEC);

  it('matches the golden file', () => {
    golden('user-data.ign', text);
  });

  it("passes the Ignition spec's own validator (ignition-validate)", () => {
    assert.ok(existsSync(ignitionValidate), `${ignitionValidate} missing: run scripts/test-tools-build.sh`);
    const path = join(dir, 'config.ign');
    writeFileSync(path, text);
    const output = execFileSync(ignitionValidate, [path], { encoding: 'utf8', stdio: 'pipe' });
    assert.equal(output.trim(), '');
    // The validator does reject a broken config (so the check above can fail).
    writeFileSync(path, text.replace('"3.4.0"', '"9.9.9"'));
    assert.throws(() => execFileSync(ignitionValidate, [path], { stdio: 'pipe' }));
  });

  it('has Ignition verify the agent download and write the token 0600', () => {
    const config = JSON.parse(text) as {
      storage: {
        files: Array<{
          path: string;
          mode: number;
          contents: { source: string; verification?: { hash: string } };
        }>;
      };
      systemd: { units: Array<{ name: string; enabled: boolean; contents: string }> };
    };
    const agent = config.storage.files.find((f) => f.path === '/opt/bin/k8s-join');
    assert.ok(agent);
    assert.equal(agent.mode, 0o755);
    assert.equal(agent.contents.verification?.hash, `sha256-${'cd'.repeat(32)}`);
    const token = config.storage.files.find((f) => f.path === '/etc/k8s-join/token');
    assert.ok(token);
    assert.equal(token.mode, 0o600);
    assert.equal(decodeURIComponent(token.contents.source.replace('data:,', '')), `${TOKEN}\n`);
    const unit = config.systemd.units[0];
    assert.ok(unit);
    assert.equal(unit.enabled, true);
    assert.ok(!unit.contents.includes(TOKEN));
  });
});

describe('the first-boot join unit', () => {
  const unit = renderJoinUnit(SPEC);

  it('has the agent retry a busy join server (429/503) within a bounded time', () => {
    const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
    assert.match(exec, / --retry=15m( |$)/);
    // Retrying is the agent's decision: it reads Retry-After and knows a bad token from a busy server.
    assert.doesNotMatch(unit, /^Restart=/m);
  });

  it('lets --extra-join-args override the retry budget', () => {
    const exec =
      /^ExecStart=(.*)$/m.exec(renderJoinUnit({ ...SPEC, extraJoinArgs: ['--retry=1h'] }))?.[1] ?? '';
    const [first, last] = [exec.indexOf('--retry=15m'), exec.indexOf('--retry=1h')];
    assert.ok(
      first !== -1 && last > first,
      `the extra --retry comes last (node parseArgs: last wins): ${exec}`,
    );
  });
});

describe('k8s-on-k8s userdata flags', () => {
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const base = [
    '--server',
    SPEC.server,
    '--ca-cert-hash',
    SPEC.caCertHash,
    '--token-file',
    tokenFile,
    '--agent-url',
    SPEC.agentUrl,
  ];
  const run = async (argv: string[]): Promise<string> => {
    let printed = '';
    await runUserDataCommand(argv, {
      out: (t) => (printed += t),
      readFile: (p) => Promise.resolve(readFileSync(p)),
    });
    return printed;
  };

  it('computes the agent hash from --agent-file', async () => {
    const agent = join(dir, 'agent');
    writeFileSync(agent, 'binary');
    const text = await run([...base, '--format', 'ignition', '--agent-file', agent]);
    assert.match(text, /"hash": "sha256-9a3a45d01531a20e89ac6ae10b0b0beb0492acd7216a368aa062d1a5fecaf9cd"/);
  });

  it('rejects bad input naming the flag', async () => {
    await assert.rejects(
      run([...base, '--format', 'yaml', '--agent-sha256', SPEC.agentSha256]),
      /--format to be cloud-config or ignition, got "yaml"/,
    );
    await assert.rejects(run([...base, '--format', 'ignition']), /exactly one of --agent-sha256/);
    await assert.rejects(
      run([...base, '--format', 'ignition', '--agent-sha256', 'xyz']),
      /--agent-sha256 to be 64 hex digits/,
    );
    await assert.rejects(
      run([
        ...base,
        '--format',
        'ignition',
        '--agent-sha256',
        SPEC.agentSha256,
        '--join-arg',
        '--x; rm -rf /',
      ]),
      /--join-arg/,
    );
    const http = base.map((a) => (a === SPEC.server ? 'http://join.example.com' : a));
    await assert.rejects(
      run([...http, '--format', 'ignition', '--agent-sha256', SPEC.agentSha256]),
      /--server to be a https: URL/,
    );
  });
});
