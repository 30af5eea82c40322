// `k8s-on-k8s status`: readControlPlaneStatus, as tables.
import { formatResourceTotals } from '../../control-plane/resources.js';
import { readControlPlaneStatus, type ControlPlaneStatus } from '../../control-plane/status.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';
import { formatTable } from '../table.js';
import { CLUSTER_HELP, parseTarget } from './flags.js';

export const STATUS_HELP = `Usage: k8s-on-k8s status NAME -n NS [flags]

Shows each component's readiness and image, certificate expiry and the control plane's total
resource requests.

Flags:
  -n, --namespace NS        infra namespace (required)
${CLUSTER_HELP}
`;

/** `k8s-on-k8s status`. */
export async function runStatus(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const target = parseTarget(argv, deps, STATUS_HELP);
  if (typeof target === 'number') return target;
  const status = await readControlPlaneStatus(target.infra, target.namespace, target.name, deps.now());
  for (const line of formatStatus(status)) deps.stdout(line);
  return 0;
}

/** The lines `status` prints. */
export function formatStatus(status: ControlPlaneStatus): string[] {
  const { spec } = status;
  const components = status.components.map((c) =>
    c.present
      ? [c.component, `${c.readyReplicas}/${c.replicas}`, c.image ?? '']
      : [c.component, 'missing', ''],
  );
  const certificates = status.certificates.map((c) => [
    c.name,
    c.commonName,
    `${c.notAfter.toISOString().slice(0, 10)} (${c.daysLeft < 0 || c.notAfter.getTime() <= 0 ? 'EXPIRED' : `in ${c.daysLeft}d`})`,
  ]);
  return [
    `control plane ${spec.name} in ${spec.namespace}: Kubernetes ${spec.kubernetesVersion}, exposed by ${spec.expose}`,
    `  API:         ${status.apiUrl}`,
    `  join server: ${status.joinUrl}`,
    '',
    ...formatTable([['COMPONENT', 'READY', 'IMAGE'], ...components]),
    '',
    ...formatTable([['CERTIFICATE', 'SUBJECT', 'EXPIRES'], ...certificates]),
    '',
    `requests: ${formatResourceTotals(status.requests)} for the whole control plane`,
  ];
}
