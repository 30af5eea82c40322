import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { NODE_PATHS } from '../../src/node/node-paths.js';
import { renderNodeFiles, type NodeFileOptions } from '../../src/node/render-node-files.js';
import { SAMPLE_BUNDLE } from './sample-bundle.js';

const fixtures = new URL('../../../test/fixtures/', import.meta.url);
const OPTIONS: NodeFileOptions = {
  nodeName: 'worker-1',
  kubeletBinary: '/opt/bin/kubelet',
  agentBinary: ['/opt/bin/k8s-join'],
  containerRuntimeEndpoint: 'unix:///run/containerd/containerd.sock',
  vip: '10.199.199.199',
  apiPort: 443,
};

function golden(name: string, actual: string): void {
  const path = new URL(name, fixtures);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs; review and rerun with UPDATE_GOLDEN=1`);
}

describe('renderNodeFiles', () => {
  const files = renderNodeFiles(SAMPLE_BUNDLE, OPTIONS);
  const byPath = new Map(files.map((f) => [f.path, f]));

  it('renders each file kubeadm would, with tight modes for credentials', () => {
    assert.deepEqual(
      files.map((f) => [f.path, f.mode.toString(8), f.secret]),
      [
        [NODE_PATHS.caCert, '644', false],
        [NODE_PATHS.bootstrapKubeconfig, '600', true],
        [NODE_PATHS.kubeletConfig, '644', false],
        [NODE_PATHS.kubeletFlagsEnv, '644', false],
        [NODE_PATHS.upstreams, '644', false],
        [NODE_PATHS.forwarderUnit, '644', false],
        [NODE_PATHS.kubeletUnit, '644', false],
        [NODE_PATHS.kubeletDropIn, '644', false],
      ],
    );
  });

  it('matches the golden unit files and flags', () => {
    golden('k8s-join-forwarder.service', byPath.get(NODE_PATHS.forwarderUnit)?.content ?? '');
    golden('kubelet.service', byPath.get(NODE_PATHS.kubeletUnit)?.content ?? '');
    golden('10-k8s-join.conf', byPath.get(NODE_PATHS.kubeletDropIn)?.content ?? '');
    golden('k8s-join-flags.env', byPath.get(NODE_PATHS.kubeletFlagsEnv)?.content ?? '');
    golden('kubelet-config.yaml', byPath.get(NODE_PATHS.kubeletConfig)?.content ?? '');
  });

  it('forces node-local facts into the KubeletConfiguration over the server copy', () => {
    const config = parseYaml(byPath.get(NODE_PATHS.kubeletConfig)?.content ?? '') as Record<string, unknown>;
    assert.equal(config.rotateCertificates, true);
    assert.deepEqual(config.clusterDNS, ['10.3.0.10']);
    assert.equal(config.containerRuntimeEndpoint, 'unix:///run/containerd/containerd.sock');
    assert.equal(
      (config.authentication as { x509: { clientCAFile: string } }).x509.clientCAFile,
      NODE_PATHS.caCert,
    );
    assert.equal(config.failCgroupV1, false);
    assert.equal(config.maxPods, undefined, "the kubelet's default unless --max-pods");
    const sized = renderNodeFiles(SAMPLE_BUNDLE, { ...OPTIONS, maxPods: 200 }).find(
      (f) => f.path === NODE_PATHS.kubeletConfig,
    );
    assert.equal((parseYaml(sized?.content ?? '') as { maxPods?: number }).maxPods, 200);
  });

  it('puts the VIP on lo before the forwarder starts, and waits for readiness', () => {
    const unit = byPath.get(NODE_PATHS.forwarderUnit)?.content ?? '';
    assert.match(unit, /^ExecStartPre=ip addr replace 10\.199\.199\.199\/32 dev lo$/m);
    assert.match(unit, /^Type=notify$/m);
    assert.match(unit, /^NotifyAccess=all$/m);
    assert.match(
      unit,
      /^ExecStart=\/opt\/bin\/k8s-join forward --listen=10\.199\.199\.199:443 --upstreams-file=\/etc\/k8s-join\/upstreams$/m,
    );
    assert.equal(
      byPath
        .get(NODE_PATHS.upstreams)
        ?.content.split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .join(','),
      'api.example.com:30443,192.0.2.10:6443',
    );
  });

  it('produces units that systemd-analyze verify accepts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'units-'));
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    // verify checks that ExecStart binaries exist, so point them at real executables here.
    const kubelet = join(dir, 'kubelet-bin');
    writeFileSync(kubelet, '#!/bin/sh\n');
    chmodSync(kubelet, 0o755);
    const real = renderNodeFiles(SAMPLE_BUNDLE, {
      ...OPTIONS,
      kubeletBinary: kubelet,
      agentBinary: [process.execPath, kubelet],
    });
    mkdirSync(join(dir, 'kubelet.service.d'));
    for (const file of real.filter((f) => f.path.startsWith('/etc/systemd/system/'))) {
      writeFileSync(join(dir, file.path.replace('/etc/systemd/system/', '')), file.content);
    }
    const output = execFileSync(
      'systemd-analyze',
      ['verify', join(dir, 'k8s-join-forwarder.service'), join(dir, 'kubelet.service')],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    assert.equal(output.trim(), '');
  });
});
