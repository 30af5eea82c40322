// What `k8s-join join --dry-run` shows: the files a join would write and the commands it would run.
// The join request is not sent (it would use the token), so the server's part is placeholders.
import { DEFAULT_API_ENDPOINT, type JoinBundle } from '@k8s-on-k8s/shared';
import { FORWARDER_UNIT_NAME, KUBELET_UNIT_NAME } from '../node/node-paths.js';
import type { NodeFile } from '../node/render-node-files.js';

/** A bundle with the discovered CA and placeholders where the join server's answer would go. */
export function placeholderBundle(nodeName: string, caPem: string): JoinBundle {
  return {
    apiVersion: 'join.k8s-on-k8s.io/v1',
    kind: 'JoinBundle',
    nodeName,
    caCert: caPem,
    apiServer: {
      endpoint: DEFAULT_API_ENDPOINT,
      upstreams: ['<apiserver endpoints from the join server>'],
    },
    bootstrapKubeconfig: '<minted by the join server>',
    bootstrapTokenExpiresAt: new Date(0).toISOString(),
    cluster: { dnsIP: '<from the join server>', domain: 'cluster.local', kubernetesVersion: 'v0.0.0' },
    kubeletConfig: { apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration' },
    serverTime: new Date(0).toISOString(),
  };
}

/** The plan as output lines: each file with its mode and content (credentials withheld), then systemctl. */
export function renderDryRunPlan(files: readonly NodeFile[]): string[] {
  const lines: string[] = [];
  for (const file of files) {
    lines.push(`[dry-run] would write ${file.path} (mode ${file.mode.toString(8)})`);
    lines.push(file.secret ? '    <credential, not shown>' : file.content.replace(/^/gm, '    '));
  }
  lines.push(`[dry-run] would run: systemctl daemon-reload`);
  lines.push(`[dry-run] would run: systemctl enable --now ${FORWARDER_UNIT_NAME} ${KUBELET_UNIT_NAME}`);
  return lines;
}
