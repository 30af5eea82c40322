import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { placeholderBundle, renderDryRunPlan } from '../../src/join/join-dry-run.js';
import { clockSkewWarning } from '../../src/join/join-command.js';
import { renderNodeFiles } from '../../src/node/render-node-files.js';
import { SAMPLE_BUNDLE, SAMPLE_CA } from '../node/sample-bundle.js';

const OPTIONS = {
  nodeName: 'worker-1',
  kubeletBinary: '/opt/bin/kubelet',
  agentBinary: ['/opt/bin/k8s-join'],
  containerRuntimeEndpoint: 'unix:///run/containerd/containerd.sock',
  vip: '10.199.199.199',
  apiPort: 443,
};

describe('join --dry-run plan', () => {
  it('shows every file with its mode but never the bootstrap credential', () => {
    const plan = renderDryRunPlan(renderNodeFiles(SAMPLE_BUNDLE, OPTIONS)).join('\n');
    assert.match(
      plan,
      /would write \/etc\/kubernetes\/bootstrap-kubelet\.conf \(mode 600\)\n {4}<credential, not shown>/,
    );
    assert.ok(!plan.includes('# token inside'), 'the bootstrap kubeconfig is withheld');
    assert.match(
      plan,
      /would write \/etc\/systemd\/system\/kubelet\.service \(mode 644\)\n {4}# Written by k8s-join/,
    );
    assert.match(plan, /would run: systemctl enable --now k8s-join-forwarder\.service kubelet\.service$/);
  });

  it('renders with the discovered CA and the API VIP in place of the server answer', () => {
    const bundle = placeholderBundle('worker-1', SAMPLE_CA);
    assert.equal(bundle.caCert, SAMPLE_CA);
    assert.equal(new URL(bundle.apiServer.endpoint).hostname, '10.199.199.199');
  });
});

describe('clockSkewWarning', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  it('stays quiet within a minute either way and warns beyond', () => {
    assert.equal(clockSkewWarning('2030-01-01T00:01:00Z', now), undefined);
    assert.equal(clockSkewWarning('2029-12-31T23:59:00Z', now), undefined);
    assert.match(clockSkewWarning('2030-01-01T00:05:00Z', now) ?? '', /clock is 5m away from the server's/);
  });
});
