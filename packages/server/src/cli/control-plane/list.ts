// `k8s-on-k8s list`.
import { parseFlags, invalidArgument } from '@k8s-on-k8s/shared';
import { listControlPlanes } from '../../control-plane/status.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';
import { formatTable } from '../table.js';
import {
  CLUSTER_FLAGS,
  CLUSTER_HELP,
  HELP_FLAG,
  SPEC_FLAGS,
  loadInfraKubeConfig,
  printHelp,
  requiredNamespace,
} from './flags.js';

export const LIST_HELP = `Usage: k8s-on-k8s list -n NS [flags]

Lists the hosted control planes in NS.

Flags:
  -n, --namespace NS        infra namespace (required)
${CLUSTER_HELP}
`;

/** `k8s-on-k8s list`. */
export async function runList(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { namespace: SPEC_FLAGS.namespace, ...CLUSTER_FLAGS, ...HELP_FLAG },
    true,
  );
  if (values.help === true) return printHelp(deps, LIST_HELP);
  if (positionals.length > 0)
    throw invalidArgument(`list takes no NAME, got ${JSON.stringify(positionals[0])}`);
  const namespace = requiredNamespace(values.namespace);
  const summaries = await listControlPlanes(loadInfraKubeConfig(values), namespace);
  if (summaries.length === 0) {
    deps.stdout(`no control planes in namespace ${namespace}`);
    return 0;
  }
  const rows = summaries.map((s) => [
    s.spec.name,
    s.spec.kubernetesVersion,
    s.spec.expose,
    s.apiUrl,
    `${s.readyDeployments}/${s.deployments} deployments`,
  ]);
  for (const line of formatTable([['NAME', 'VERSION', 'EXPOSE', 'API', 'READY'], ...rows])) deps.stdout(line);
  return 0;
}
