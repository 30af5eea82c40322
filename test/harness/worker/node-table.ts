import type { V1Node } from '@kubernetes/client-node';

/** `kubectl get nodes` age: 45s, 3m12s, 2h5m, 3d4h. */
function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 === 0 ? '' : `${s % 60}s`}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 === 0 ? '' : `${m % 60}m`}`;
  return `${Math.floor(h / 24)}d${h % 24 === 0 ? '' : `${h % 24}h`}`;
}

/**
 * The table `kubectl get nodes` prints (NAME STATUS ROLES AGE VERSION), from Node objects: kubectl
 * is not among the harness binaries, so the tests and the demo print it from @kubernetes/client-node.
 */
export function formatNodeTable(nodes: readonly V1Node[], now: Date): string {
  const rows = [['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION']];
  for (const node of nodes) {
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    const status = ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady';
    const roles = Object.keys(node.metadata?.labels ?? {})
      .filter((label) => label.startsWith('node-role.kubernetes.io/'))
      .map((label) => label.slice('node-role.kubernetes.io/'.length));
    const created = node.metadata?.creationTimestamp;
    rows.push([
      node.metadata?.name ?? '',
      `${status}${node.spec?.unschedulable === true ? ',SchedulingDisabled' : ''}`,
      roles.length === 0 ? '<none>' : roles.join(','),
      created === undefined ? '<unknown>' : formatAge(now.getTime() - new Date(created).getTime()),
      node.status?.nodeInfo?.kubeletVersion ?? '',
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd((widths[i] ?? 0) + 3))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}
