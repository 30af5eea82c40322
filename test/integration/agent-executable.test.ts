import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../harness/index.js';

const executable = join(REPO_ROOT, 'packages', 'agent', 'dist', `k8s-join-linux-${process.arch}`);

describe('k8s-join single executable (npm run build:agent)', () => {
  it('exists: npm test builds it before the tests', () => {
    assert.ok(existsSync(executable), `${executable} is missing: run \`npm run build:agent\``);
  });

  it('runs `version` and `--help` with no Node on PATH and no node_modules', () => {
    const env = { PATH: '/usr/sbin:/sbin', HOME: '/nonexistent' };
    const version = execFileSync(executable, ['version'], { encoding: 'utf8', env, cwd: '/' });
    const manifest = JSON.parse(
      readFileSync(join(REPO_ROOT, 'packages', 'agent', 'package.json'), 'utf8'),
    ) as { version: string };
    assert.equal(version.trim(), `k8s-join ${manifest.version}`);
    const help = execFileSync(executable, ['--help'], { encoding: 'utf8', env, cwd: '/' });
    assert.match(help, /^Usage: k8s-join <command>/);
    for (const command of ['join', 'reset', 'forward', 'version'])
      assert.match(help, new RegExp(`^  ${command} `, 'm'));
    const joinHelp = execFileSync(executable, ['join', '--help'], { encoding: 'utf8', env, cwd: '/' });
    assert.match(joinHelp, /--ca-cert-hash sha256:HEX/);
  });

  it('exits 2 with a message naming the flag for bad input', () => {
    try {
      execFileSync(executable, ['join', '--server', 'http://x'], { encoding: 'utf8', stdio: 'pipe' });
      assert.fail('expected a non-zero exit');
    } catch (error) {
      const failure = error as { status: number; stderr: string };
      assert.equal(failure.status, 2);
      assert.match(failure.stderr, /--server/);
    }
  });
});
