// `k8s-on-k8s list`: one namespace (-n) or all of them (-A), as kubectl get does.
import { invalidArgument, parseFlags } from '@k8s-on-k8s/shared';
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

export const LIST_HELP = `Usage: k8s-on-k8s list (-n NS | -A) [flags]

Lists the hosted control planes in NS, or in every namespace you can list.

Flags:
  -n, --namespace NS        infra namespace
  -A, --all-namespaces      every namespace (adds a NAMESPACE column)
${CLUSTER_HELP}
`;

/** `k8s-on-k8s list`. */
export async function runList(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      namespace: SPEC_FLAGS.namespace,
      'all-namespaces': { type: 'boolean', short: 'A' },
      ...CLUSTER_FLAGS,
      ...HELP_FLAG,
    },
    true,
  );
  if (values.help === true) return printHelp(deps, LIST_HELP);
  if (positionals.length > 0)
    throw invalidArgument(`list takes no NAME, got ${JSON.stringify(positionals[0])}`);
  const all = values['all-namespaces'] === true;
  if (all && values.namespace !== undefined) {
    throw invalidArgument('Give either -n/--namespace or -A/--all-namespaces, not both');
  }
  if (!all && values.namespace === undefined) {
    throw invalidArgument('Missing -n/--namespace: the infra namespace (or -A for every namespace)');
  }
  const namespace = all ? undefined : requiredNamespace(values.namespace);
  const summaries = await listControlPlanes(loadInfraKubeConfig(values), namespace);
  if (summaries.length === 0) {
    deps.stdout(
      namespace === undefined
        ? 'no control planes in any namespace'
        : `no control planes in namespace ${namespace}`,
    );
    return 0;
  }
  const header = ['NAME', 'VERSION', 'EXPOSE', 'API', 'READY'];
  const rows = summaries.map((s) => [
    s.spec.name,
    s.spec.kubernetesVersion,
    s.spec.expose,
    s.apiUrl,
    `${s.readyDeployments}/${s.deployments} deployments`,
  ]);
  const table = all
    ? [['NAMESPACE', ...header], ...rows.map((row, i) => [summaries[i]?.spec.namespace ?? '', ...row])]
    : [header, ...rows];
  for (const line of formatTable(table)) deps.stdout(line);
  return 0;
}
