// Every flag the renderer gives a component is one that component's binary of the same version
// accepts: checked against `--help` of the harness-built binaries, and the join server's own help.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { V1Deployment } from '@kubernetes/client-node';
import {
  JOIN_SERVER_HELP,
  buildControlPlaneSpec,
  completeControlPlanePki,
  renderControlPlane,
} from '@k8s-on-k8s/server';
import { kubeBinary, type KubeBinary } from '../harness/index.js';

const run = promisify(execFile);

/** The `--flag` names a binary's help text documents. */
async function helpFlags(binary: KubeBinary): Promise<Set<string>> {
  // kube components print help on stdout and exit 0; etcd too. Either way, read both streams.
  const result = await run(kubeBinary(binary), ['--help'], { maxBuffer: 4 << 20 }).catch(
    (error: unknown) => error as { stdout: string; stderr: string },
  );
  return new Set(`${result.stdout}\n${result.stderr}`.match(/--[a-z0-9][a-z0-9-]*/g) ?? []);
}

function flagsOf(args: readonly string[]): string[] {
  return args.map((arg) => {
    const match = /^(--[a-z0-9-]+)(=.*)?$/.exec(arg);
    assert.ok(match, `${arg} is a --flag[=value]`);
    return match[1] ?? '';
  });
}

describe('rendered component flags are accepted by the v1.37.2 binaries', async () => {
  const spec = buildControlPlaneSpec({
    name: 'flags',
    namespace: 'infra',
    host: 'api.example.com',
    nodePorts: { api: 30443, join: 30444, konnectivity: 30132 },
  });
  const { pki } = await completeControlPlanePki(spec, {});
  const objects = renderControlPlane(spec, pki);
  const containers = objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .flatMap((o) => (o as V1Deployment).spec?.template.spec?.containers ?? []);

  const binaries: Record<string, KubeBinary> = {
    etcd: 'etcd',
    'kube-apiserver': 'kube-apiserver',
    'kube-controller-manager': 'kube-controller-manager',
    'kube-scheduler': 'kube-scheduler',
  };
  for (const [command, binary] of Object.entries(binaries)) {
    it(`${command}: every rendered flag is in \`${binary} --help\``, async () => {
      const container = containers.find((c) => c.command?.[0] === command);
      assert.ok(container, `${command} rendered`);
      const known = await helpFlags(binary);
      assert.ok(known.size > 20, `${binary} --help lists its flags`);
      const unknown = flagsOf(container.args ?? []).filter((flag) => !known.has(flag));
      assert.deepEqual(unknown, [], `${binary} does not know ${unknown.join(', ')}`);
    });
  }

  it('k8s-join-server: every rendered flag is in its --help', () => {
    const container = containers.find((c) => c.command?.[0] === 'k8s-join-server');
    assert.ok(container);
    const known = new Set(JOIN_SERVER_HELP.match(/--[a-z0-9][a-z0-9-]*/g) ?? []);
    const unknown = flagsOf(container.args ?? []).filter((flag) => !known.has(flag));
    assert.deepEqual(unknown, []);
  });
});
