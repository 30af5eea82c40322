// `k8s-on-k8s create`: flags → spec → the reconcile core, printing its events; then the admin
// kubeconfig file and the next step. The Kubernetes work is all in ensureControlPlane.
import { join } from 'node:path';
import { parseDuration, parseFlags, writeFileAtomic } from '@k8s-on-k8s/shared';
import { checkNamespaceAccess } from '../../control-plane/access.js';
import { ensureControlPlane, type ControlPlaneEvent } from '../../control-plane/reconcile.js';
import { buildControlPlaneSpec, type ControlPlaneSpec } from '../../control-plane/spec.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';
import { createViaOperator } from './create-via-operator.js';
import {
  CLUSTER_FLAGS,
  CLUSTER_HELP,
  HELP_FLAG,
  SPEC_FLAGS,
  SPEC_HELP,
  loadInfraKubeConfig,
  printHelp,
  specInputFromFlags,
} from './flags.js';

export const CREATE_HELP = `Usage: k8s-on-k8s create NAME -n NS --host API_HOST [flags]

Creates (or brings up to date) a hosted Kubernetes control plane in namespace NS of the infra
cluster: PKI in Secrets, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the join
server and their Services; waits for the hosted /readyz; installs node-bootstrap RBAC, kube-proxy,
the CNI and CoreDNS into the hosted cluster; writes ./NAME.kubeconfig (0600). Running it again
with the same flags changes nothing.

Flags:
${SPEC_HELP}
${CLUSTER_HELP}
  --wait DURATION           how long to wait for the hosted API and every control-plane pod Ready
                            (default 5m); 0 = apply and return without waiting or installing the
                            hosted-cluster assets
  --via-operator            write the flags as a HostedControlPlane for k8s-on-k8s-operator (installed
                            with kubectl apply -f deploy/operator/) and wait for it to be Available,
                            instead of doing the work here; the same objects either way
`;

/** `k8s-on-k8s create`. */
export async function runCreate(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      ...SPEC_FLAGS,
      ...CLUSTER_FLAGS,
      ...HELP_FLAG,
      wait: { type: 'string' },
      'via-operator': { type: 'boolean' },
    },
    true,
  );
  if (values.help === true) return printHelp(deps, CREATE_HELP);
  const input = specInputFromFlags(positionals, values);
  const spec = buildControlPlaneSpec(input);
  const waitMs = values.wait === '0' ? 0 : parseDuration(values.wait ?? '5m', '--wait');
  const infra = loadInfraKubeConfig(values);
  if (values['via-operator'] === true) return createViaOperator(spec, input, infra, waitMs, deps);

  await checkNamespaceAccess(infra, spec);
  deps.stdout(`CHECK: access to namespace ${spec.namespace} confirmed`);
  await checkHostResolves(spec.host, deps);

  const ensured = await ensureControlPlane(
    spec,
    {
      infra,
      now: deps.now,
      onEvent: (event) => {
        printEvent(event, spec, deps);
      },
    },
    { readyTimeoutMs: waitMs },
  );
  const path = join(deps.cwd, `${spec.name}.kubeconfig`);
  await writeFileAtomic(path, ensured.adminKubeconfig, 0o600);
  deps.stdout(`wrote ${path} (cluster admin, mode 0600)`);

  if (!ensured.ready) {
    deps.stdout(
      `not waiting (--wait 0): once ${ensured.apiUrl}/readyz answers, run the same create again to install kube-proxy, ${addonNames(spec)}CoreDNS and the node-bootstrap RBAC`,
    );
    return 0;
  }
  deps.stdout(`Server Version: ${ensured.serverVersion ?? 'unknown'}`);
  deps.stdout('');
  deps.stdout('Next: mint a join token and run the command it prints on each worker:');
  deps.stdout(
    `  k8s-on-k8s token create --server ${ensured.joinUrl} --kubeconfig ${path} --ttl 30m --uses 1`,
  );
  return 0;
}

/** One line per event of the reconcile core, as create has always printed them. */
function printEvent(event: ControlPlaneEvent, spec: ControlPlaneSpec, deps: ControlPlaneCommandDeps): void {
  switch (event.type) {
    case 'PkiCompleted':
      deps.stdout(
        event.generated.length === 0
          ? 'PKI: reusing the existing keys and certificates'
          : `PKI: generated ${event.generated.length} of ${event.total} (${event.generated.join(', ')})`,
      );
      return;
    case 'NodePortsAllocated':
      return;
    case 'Applied':
      deps.stdout(`applied ${event.object}`);
      return;
    case 'Waiting':
      deps.stdout(event.message);
      return;
    case 'HostedAssetsInstalled':
      deps.stdout(
        `installed into the hosted cluster: ${event.count} objects (node-bootstrap RBAC, kube-proxy, ${addonNames(spec)}CoreDNS)`,
      );
      return;
    case 'PodsReady':
      deps.stdout(
        `control-plane pods: all Ready (etcd, apiserver, controller-manager, scheduler, join server) after ${Math.round(event.afterMs / 1000)}s`,
      );
      return;
  }
}

function addonNames(spec: ControlPlaneSpec): string {
  return spec.cni === 'none' ? '' : `${spec.cni}, `;
}

/** Warns (only) when the API host does not resolve: DNS may be set up after create. */
async function checkHostResolves(host: string, deps: ControlPlaneCommandDeps): Promise<void> {
  try {
    const addresses = await deps.lookupHost(host);
    deps.stdout(`CHECK: API host ${host} resolves to ${addresses.join(', ')}`);
  } catch (error) {
    deps.stderr(
      `WARNING: API host ${host} does not resolve (${error instanceof Error ? error.message : String(error)}); workers and the admin kubeconfig need it to`,
    );
  }
}
