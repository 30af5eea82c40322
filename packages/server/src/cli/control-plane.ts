// `k8s-on-k8s create | render | delete | status | list | kubeconfig`: flags → validated spec →
// pure renderers → server-side apply. Everything that touches the process or the network comes in
// through ControlPlaneCommandDeps, so tests drive the commands in-process against a real apiserver.
import { lookup } from 'node:dns/promises';
import { chmod, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AuthorizationV1Api,
  KubeConfig,
  VersionApi,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Deployment,
  type V1Secret,
  type V1Service,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import {
  K8sOnK8sError,
  ValidationError,
  describeCertificate,
  parseDuration,
  parseFlags,
  renderKubeconfig,
} from '@k8s-on-k8s/shared';
import {
  applyObjects,
  deleteObjects,
  describeObject,
  kubernetesError,
  listObjects,
  readObject,
  type ObjectKind,
} from '../kube/apply.js';
import {
  CONTROL_PLANE_LABEL,
  buildControlPlaneSpec,
  publicApiUrl,
  publicJoinUrl,
  withNodePorts,
  type ControlPlaneSpec,
  type ControlPlaneSpecInput,
} from '../control-plane/spec.js';
import {
  PKI_NAMES,
  completeControlPlanePki,
  pkiSecretName,
  readControlPlanePki,
  type ControlPlanePki,
} from '../control-plane/pki.js';
import {
  COMPONENTS,
  COMPONENT_LABEL,
  DATA_LABEL,
  componentName,
  formatObjectsYaml,
  renderControlPlane,
  renderControlPlaneServices,
  specConfigMapName,
} from '../control-plane/render/control-plane.js';
import { renderHostedAssets } from '../control-plane/render/hosted-assets.js';
import { formatResourceTotals, sumResourceRequests } from '../control-plane/resources.js';
import { waitForReadyz } from '../kube/readyz.js';

/** What the commands need from the process; the bin passes the real ones. */
export interface ControlPlaneCommandDeps {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** Where `create` writes NAME.kubeconfig. */
  readonly cwd: string;
  readonly now: () => Date;
  /** Resolves a host name to addresses (the `--host` check); rejects when it does not resolve. */
  readonly lookupHost: (host: string) => Promise<readonly string[]>;
}

/** The real process: console, cwd, clock and DNS. */
export function processDeps(): ControlPlaneCommandDeps {
  return {
    stdout: (line) => {
      process.stdout.write(`${line}\n`);
    },
    stderr: (line) => {
      process.stderr.write(`${line}\n`);
    },
    cwd: process.cwd(),
    now: () => new Date(),
    lookupHost: async (host) => (await lookup(host, { all: true })).map((a) => a.address),
  };
}

/**
 * Runs a command with the real process and resolves once stdout has drained: the bin calls
 * process.exit, which would cut a large `render` short on a pipe.
 */
export async function runInProcess(
  command: (argv: readonly string[], deps: ControlPlaneCommandDeps) => Promise<number>,
  argv: readonly string[],
): Promise<number> {
  const code = await command(argv, processDeps());
  if (process.stdout.writableLength > 0) {
    await new Promise<void>((resolve) =>
      process.stdout.once('drain', () => {
        resolve();
      }),
    );
  }
  return code;
}

const KINDS = {
  configMap: { apiVersion: 'v1', kind: 'ConfigMap' },
  secret: { apiVersion: 'v1', kind: 'Secret' },
  service: { apiVersion: 'v1', kind: 'Service' },
  pvc: { apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
  deployment: { apiVersion: 'apps/v1', kind: 'Deployment' },
  statefulSet: { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  ingress: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' },
} as const satisfies Record<string, ObjectKind>;

/** Every kind `create` makes in the infra namespace (and the PVCs its StatefulSet makes); delete walks these. */
export const CONTROL_PLANE_KINDS: readonly ObjectKind[] = [
  KINDS.ingress,
  KINDS.deployment,
  KINDS.statefulSet,
  KINDS.service,
  KINDS.configMap,
  KINDS.secret,
  KINDS.pvc,
];

const SPEC_FLAGS = {
  namespace: { type: 'string', short: 'n' },
  host: { type: 'string' },
  'join-host': { type: 'string' },
  version: { type: 'string' },
  expose: { type: 'string' },
  'ingress-class': { type: 'string' },
  'api-node-port': { type: 'string' },
  'join-node-port': { type: 'string' },
  cni: { type: 'string' },
  'etcd-storage': { type: 'string' },
  'service-cidr': { type: 'string' },
  'pod-cidr': { type: 'string' },
  vip: { type: 'string' },
} as const;
const CLUSTER_FLAGS = { kubeconfig: { type: 'string' }, context: { type: 'string' } } as const;
const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

const SPEC_HELP = `  -n, --namespace NS        infra namespace to create it in (required)
  --host API_HOST           public DNS name (or IP) of the hosted API (required); it must route to
                            the infra cluster's nodes (nodeport), load balancer or ingress
  --version VERSION         Kubernetes version (default v1.37.2); the etcd image follows it
  --expose KIND             nodeport (default), loadbalancer or ingress (TLS passthrough)
  --ingress-class NAME      IngressClass of the ingress (with --expose ingress)
  --join-host HOST          public name of the join server (default: --host; join.<host> behind an ingress)
  --api-node-port PORT      NodePort of the apiserver (default: allocated by the infra cluster)
  --join-node-port PORT     NodePort of the join server (default: allocated)
  --cni KIND                flannel (default) or none
  --etcd-storage SIZE       etcd PersistentVolumeClaim size (default 1Gi), or none for an emptyDir
  --service-cidr CIDR       hosted Service CIDR (default 10.3.0.0/24; CoreDNS on its 10th IP)
  --pod-cidr CIDR           hosted pod CIDR (default 10.2.0.0/16)
  --vip IP                  the API address every worker carries on lo (default 10.199.199.199)`;
const CLUSTER_HELP = `  --kubeconfig FILE         infra cluster kubeconfig (default $KUBECONFIG or ~/.kube/config)
  --context NAME            context of that kubeconfig (default: its current context)`;

export const CREATE_HELP = `Usage: k8s-on-k8s create NAME -n NS --host API_HOST [flags]

Creates (or brings up to date) a hosted Kubernetes control plane in namespace NS of the infra
cluster: PKI in Secrets, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the join
server and their Services; waits for the hosted /readyz; installs node-bootstrap RBAC, kube-proxy,
the CNI and CoreDNS into the hosted cluster; writes ./NAME.kubeconfig (0600). Running it again
with the same flags changes nothing.

Flags:
${SPEC_HELP}
${CLUSTER_HELP}
  --wait DURATION           how long to wait for the hosted API (default 5m); 0 = apply and return
                            without waiting or installing the hosted-cluster assets
`;

export const RENDER_HELP = `Usage: k8s-on-k8s render NAME -n NS --host API_HOST [flags] > control-plane.yaml

Prints what create would apply, as YAML, without touching a cluster (a fresh PKI is generated into
the Secrets, so keep the output as secret as they are). With --expose nodeport give
--api-node-port and --join-node-port, since the join server's flags name them.

Flags:
${SPEC_HELP}
  --hosted-assets           print the hosted-cluster objects (RBAC, kube-proxy, CNI, CoreDNS) instead
`;

export const DELETE_HELP = `Usage: k8s-on-k8s delete NAME -n NS [--keep-data] [flags]

Deletes every object labelled ${CONTROL_PLANE_LABEL}=NAME in NS, and nothing else.

Flags:
  -n, --namespace NS        infra namespace (required)
  --keep-data               keep etcd's PersistentVolumeClaim and the PKI Secrets (the data is
                            encrypted with keys kept there), so a later create picks both up
${CLUSTER_HELP}
`;

export const STATUS_HELP = `Usage: k8s-on-k8s status NAME -n NS [flags]

Shows each component's readiness and image, certificate expiry and the control plane's total
resource requests.

Flags:
  -n, --namespace NS        infra namespace (required)
${CLUSTER_HELP}
`;

export const LIST_HELP = `Usage: k8s-on-k8s list -n NS [flags]

Lists the hosted control planes in NS.

Flags:
  -n, --namespace NS        infra namespace (required)
${CLUSTER_HELP}
`;

export const KUBECONFIG_HELP = `Usage: k8s-on-k8s kubeconfig NAME -n NS [flags] > NAME.kubeconfig

Prints the hosted cluster's admin kubeconfig (it holds the admin's private key).

Flags:
  -n, --namespace NS        infra namespace (required)
${CLUSTER_HELP}
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
    },
    true,
  );
  if (values.help === true) return help(deps, CREATE_HELP);
  let spec = buildControlPlaneSpec(specInput(positionals, values));
  const waitMs = values.wait === '0' ? 0 : parseDuration(values.wait ?? '5m', '--wait');
  const kubeConfig = loadInfraKubeConfig(values.kubeconfig, values.context);

  await checkAccess(kubeConfig, spec, deps);
  await checkHostResolves(spec.host, deps);

  const existing = await readExistingPki(kubeConfig, spec);
  const { pki, generated } = await completeControlPlanePki(spec, existing, { now: deps.now });
  deps.stdout(
    generated.length === 0
      ? 'PKI: reusing the existing keys and certificates'
      : `PKI: generated ${generated.length} of ${PKI_NAMES.length} (${generated.join(', ')})`,
  );

  if (spec.expose === 'nodeport') spec = await allocateNodePorts(kubeConfig, spec);
  await applyObjects(kubeConfig, renderControlPlane(spec, pki), (object) => {
    deps.stdout(`applied ${describeObject(object)}`);
  });

  const adminKubeconfig = renderAdminKubeconfig(spec, pki);
  const path = join(deps.cwd, `${spec.name}.kubeconfig`);
  await writePrivateFile(path, adminKubeconfig);
  deps.stdout(`wrote ${path} (cluster admin, mode 0600)`);

  if (waitMs === 0) {
    deps.stdout(
      `not waiting (--wait 0): once ${publicApiUrl(spec)}/readyz answers, run the same create again to install kube-proxy, ${spec.cni === 'none' ? '' : `${spec.cni}, `}CoreDNS and the node-bootstrap RBAC`,
    );
    return 0;
  }
  await waitForReadyz({
    url: publicApiUrl(spec),
    caPem: pki.ca.certPem,
    clientCertPem: pki.admin.certPem,
    clientKeyPem: pki.admin.keyPem,
    timeoutMs: waitMs,
    onProgress: deps.stdout,
  });
  const hosted = new KubeConfig();
  hosted.loadFromString(adminKubeconfig);
  const installed = await applyObjects(hosted, renderHostedAssets(spec));
  deps.stdout(
    `installed into the hosted cluster: ${installed.length} objects (node-bootstrap RBAC, kube-proxy, ${spec.cni === 'none' ? '' : `${spec.cni}, `}CoreDNS)`,
  );
  const version = await hosted
    .makeApiClient(VersionApi)
    .getCode()
    .catch((error: unknown) => {
      throw kubernetesError('read the hosted /version', error);
    });
  deps.stdout(`Server Version: ${version.gitVersion}`);
  deps.stdout('');
  deps.stdout('Next: mint a join token and run the command it prints on each worker:');
  deps.stdout(
    `  k8s-on-k8s token create --server ${publicJoinUrl(spec)} --kubeconfig ${path} --ttl 30m --uses 1`,
  );
  return 0;
}

/** `k8s-on-k8s render`: the same objects as create, as YAML, with no cluster. */
export async function runRender(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      ...SPEC_FLAGS,
      ...HELP_FLAG,
      'hosted-assets': { type: 'boolean' },
    },
    true,
  );
  if (values.help === true) return help(deps, RENDER_HELP);
  const spec = buildControlPlaneSpec(specInput(positionals, values));
  if (values['hosted-assets'] === true) {
    deps.stdout(formatObjectsYaml(renderHostedAssets(spec)).trimEnd());
    return 0;
  }
  // Fail on a missing NodePort before spending time on keys.
  publicApiUrl(spec);
  publicJoinUrl(spec);
  const { pki } = await completeControlPlanePki(spec, {}, { now: deps.now });
  deps.stdout(formatObjectsYaml(renderControlPlane(spec, pki)).trimEnd());
  return 0;
}

/** `k8s-on-k8s delete`. */
export async function runDelete(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      namespace: SPEC_FLAGS.namespace,
      ...CLUSTER_FLAGS,
      ...HELP_FLAG,
      'keep-data': { type: 'boolean' },
    },
    true,
  );
  if (values.help === true) return help(deps, DELETE_HELP);
  const { name, namespace } = nameAndNamespace(positionals, values.namespace);
  const kubeConfig = loadInfraKubeConfig(values.kubeconfig, values.context);
  const keepData = values['keep-data'] === true;
  const selector = `${CONTROL_PLANE_LABEL}=${name}${keepData ? `,${DATA_LABEL}!=true` : ''}`;
  const deleted = await deleteObjects(kubeConfig, CONTROL_PLANE_KINDS, namespace, selector, (object) => {
    deps.stdout(`deleted ${describeObject(object)}`);
  });
  if (deleted.length === 0) {
    throw new K8sOnK8sError(
      'NOT_FOUND',
      `no objects labelled ${CONTROL_PLANE_LABEL}=${name} in namespace ${namespace}`,
      {
        hint: `k8s-on-k8s list -n ${namespace} shows the control planes there`,
      },
    );
  }
  deps.stdout(
    `deleted control plane ${name}: ${deleted.length} objects${keepData ? ' (kept the etcd volume and the PKI Secrets)' : ''}`,
  );
  return 0;
}

/** `k8s-on-k8s status`. */
export async function runStatus(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const target = await openControlPlane(argv, deps, STATUS_HELP);
  if (typeof target === 'number') return target;
  const { name, namespace, kubeConfig, spec } = target;
  deps.stdout(
    `control plane ${name} in ${namespace}: Kubernetes ${spec.kubernetesVersion}, exposed by ${spec.expose}`,
  );
  deps.stdout(`  API:         ${publicApiUrl(spec)}`);
  deps.stdout(`  join server: ${publicJoinUrl(spec)}`);
  deps.stdout('');

  const workloads: KubernetesObject[] = [];
  const rows = [['COMPONENT', 'READY', 'IMAGE']];
  for (const component of COMPONENTS) {
    const kind = component === 'etcd' ? KINDS.statefulSet : KINDS.deployment;
    const object = await readObject<V1Deployment | V1StatefulSet>(
      kubeConfig,
      kind,
      namespace,
      componentName(spec, component),
    );
    if (object === undefined) {
      rows.push([component, 'missing', '']);
      continue;
    }
    workloads.push(object);
    const ready = object.status?.readyReplicas ?? 0;
    rows.push([
      component,
      `${ready}/${object.spec?.replicas ?? 1}`,
      object.spec?.template.spec?.containers[0]?.image ?? '',
    ]);
  }
  for (const line of table(rows)) deps.stdout(line);
  deps.stdout('');

  const now = deps.now().getTime();
  const certRows = [['CERTIFICATE', 'SUBJECT', 'EXPIRES']];
  const secrets = (await listObjects(
    kubeConfig,
    KINDS.secret,
    namespace,
    `${CONTROL_PLANE_LABEL}=${name},${DATA_LABEL}=true`,
  )) as V1Secret[];
  for (const pkiName of PKI_NAMES) {
    const secret = secrets.find((s) => s.metadata?.name === pkiSecretName(spec, pkiName));
    const certB64 = secret?.data?.['tls.crt'];
    if (certB64 === undefined) continue;
    const cert = describeCertificate(Buffer.from(certB64, 'base64').toString('utf8'));
    const left = cert.notAfter.getTime() - now;
    certRows.push([
      pkiName,
      cert.commonName,
      `${cert.notAfter.toISOString().slice(0, 10)} (${left <= 0 ? 'EXPIRED' : `in ${Math.floor(left / 86_400_000)}d`})`,
    ]);
  }
  for (const line of table(certRows)) deps.stdout(line);
  deps.stdout('');
  deps.stdout(
    `requests: ${formatResourceTotals(sumResourceRequests(workloads))} for the whole control plane`,
  );
  return 0;
}

/** `k8s-on-k8s list`. */
export async function runList(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      namespace: SPEC_FLAGS.namespace,
      ...CLUSTER_FLAGS,
      ...HELP_FLAG,
    },
    true,
  );
  if (values.help === true) return help(deps, LIST_HELP);
  if (positionals.length > 0) throw invalid(`list takes no NAME, got ${JSON.stringify(positionals[0])}`);
  const namespace = requiredNamespace(values.namespace);
  const kubeConfig = loadInfraKubeConfig(values.kubeconfig, values.context);
  const configMaps = await listObjects(kubeConfig, KINDS.configMap, namespace, CONTROL_PLANE_LABEL);
  const rows = [['NAME', 'VERSION', 'EXPOSE', 'API', 'READY']];
  for (const configMap of configMaps as V1ConfigMap[]) {
    const spec = specFromConfigMap(configMap);
    if (spec === undefined) continue;
    const deployments = (await listObjects(
      kubeConfig,
      KINDS.deployment,
      namespace,
      `${CONTROL_PLANE_LABEL}=${spec.name}`,
    )) as V1Deployment[];
    const ready = deployments.filter((d) => (d.status?.readyReplicas ?? 0) >= (d.spec?.replicas ?? 1)).length;
    rows.push([
      spec.name,
      spec.kubernetesVersion,
      spec.expose,
      publicApiUrl(spec),
      `${ready}/${deployments.length} deployments`,
    ]);
  }
  if (rows.length === 1) {
    deps.stdout(`no control planes in namespace ${namespace}`);
    return 0;
  }
  for (const line of table(rows)) deps.stdout(line);
  return 0;
}

/** `k8s-on-k8s kubeconfig`: the admin kubeconfig, rebuilt from the Secrets. */
export async function runKubeconfig(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const target = await openControlPlane(argv, deps, KUBECONFIG_HELP);
  if (typeof target === 'number') return target;
  const { name, namespace, kubeConfig, spec } = target;
  const pki = await readExistingPki(kubeConfig, spec);
  if (pki.ca === undefined || pki.admin === undefined) {
    throw new K8sOnK8sError(
      'NOT_FOUND',
      `control plane ${name} in ${namespace} has no CA or admin certificate Secret`,
      {
        hint: `run k8s-on-k8s create ${name} -n ${namespace} … again to recreate them`,
      },
    );
  }
  deps.stdout(renderAdminKubeconfig(spec, { ca: pki.ca, admin: pki.admin }).trimEnd());
  return 0;
}

/** The hosted cluster's admin kubeconfig, pointing at the public API URL. */
export function renderAdminKubeconfig(
  spec: ControlPlaneSpec,
  pki: Pick<ControlPlanePki, 'ca' | 'admin'>,
): string {
  return renderKubeconfig({
    clusterName: spec.name,
    server: publicApiUrl(spec),
    caPem: pki.ca.certPem,
    userName: `${spec.name}-admin`,
    credentials: { clientCertPem: pki.admin.certPem, clientKeyPem: pki.admin.keyPem },
  });
}

/** Loads the infra cluster's kubeconfig; errors name the flag. */
export function loadInfraKubeConfig(path: string | undefined, context: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    if (path === undefined) kubeConfig.loadFromDefault();
    else kubeConfig.loadFromFile(path);
  } catch (cause) {
    throw new ValidationError(
      'INVALID_KUBECONFIG',
      `Cannot load --kubeconfig ${JSON.stringify(path ?? '(default)')}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  if (context !== undefined) {
    if (kubeConfig.getContextObject(context) === null) {
      throw new ValidationError(
        'INVALID_KUBECONFIG',
        `Expected --context to name a context of the kubeconfig, got ${JSON.stringify(context)}`,
      );
    }
    kubeConfig.setCurrentContext(context);
  }
  if (kubeConfig.getCurrentCluster() === null) {
    throw new ValidationError(
      'INVALID_KUBECONFIG',
      `--kubeconfig ${JSON.stringify(path ?? '(default)')} has no current cluster`,
    );
  }
  return kubeConfig;
}

/**
 * Asks the infra apiserver whether we may do everything create does in the namespace, before
 * generating a single key, and names whatever is missing.
 */
async function checkAccess(
  kubeConfig: KubeConfig,
  spec: ControlPlaneSpec,
  deps: ControlPlaneCommandDeps,
): Promise<void> {
  const api = kubeConfig.makeApiClient(AuthorizationV1Api);
  const resources: [string, string][] = [
    ['', 'secrets'],
    ['', 'configmaps'],
    ['', 'services'],
    ['apps', 'deployments'],
    ['apps', 'statefulsets'],
    ...(spec.expose === 'ingress' ? [['networking.k8s.io', 'ingresses'] as [string, string]] : []),
  ];
  const checks = resources.flatMap(([group, resource]) =>
    ['get', 'list', 'create', 'patch'].map((verb) => ({ group, resource, verb })),
  );
  const denied: string[] = [];
  await Promise.all(
    checks.map(async ({ group, resource, verb }) => {
      const review = await api
        .createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { namespace: spec.namespace, group, resource, verb } },
          },
        })
        .catch((error: unknown) => {
          throw kubernetesError(`check access to ${resource} in ${spec.namespace}`, error);
        });
      if (review.status?.allowed !== true)
        denied.push(`${verb} ${group === '' ? '' : `${group}/`}${resource}`);
    }),
  );
  if (denied.length > 0) {
    throw new K8sOnK8sError(
      'FORBIDDEN',
      `not allowed in namespace ${spec.namespace}: ${denied.sort().join(', ')}`,
      {
        hint: 'ask the infra cluster admin for a RoleBinding to the `admin` ClusterRole in that namespace',
      },
    );
  }
  deps.stdout(`CHECK: access to namespace ${spec.namespace} confirmed`);
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

async function readExistingPki(
  kubeConfig: KubeConfig,
  spec: ControlPlaneSpec,
): Promise<Partial<ControlPlanePki>> {
  const secrets = (await listObjects(
    kubeConfig,
    KINDS.secret,
    spec.namespace,
    `${CONTROL_PLANE_LABEL}=${spec.name},${DATA_LABEL}=true`,
  )) as V1Secret[];
  return readControlPlanePki(spec, new Map(secrets.map((s) => [s.metadata?.name ?? '', s.data ?? {}])));
}

/**
 * Fills in the NodePorts the spec leaves open: kept from the existing Services, else allocated by
 * applying the Services first. Never drops an allocated port, which would make the next apply
 * release it and get a new one.
 */
async function allocateNodePorts(kubeConfig: KubeConfig, spec: ControlPlaneSpec): Promise<ControlPlaneSpec> {
  const services = renderControlPlaneServices(spec);
  const port = async (component: 'apiserver' | 'join-server', given: number | undefined): Promise<number> => {
    if (given !== undefined) return given;
    const name = componentName(spec, component);
    const existing = await readObject<V1Service>(kubeConfig, KINDS.service, spec.namespace, name);
    const kept = existing?.spec?.ports?.[0]?.nodePort;
    if (kept !== undefined) return kept;
    const service = services.find((s) => s.metadata?.name === name);
    const [applied] = (await applyObjects(kubeConfig, service === undefined ? [] : [service])) as V1Service[];
    const allocated = applied?.spec?.ports?.[0]?.nodePort;
    if (allocated === undefined) {
      throw new K8sOnK8sError(
        'SERVER_ERROR',
        `the infra cluster allocated no NodePort for Service ${spec.namespace}/${name}`,
      );
    }
    return allocated;
  };
  return withNodePorts(
    spec,
    await port('apiserver', spec.nodePorts.api),
    await port('join-server', spec.nodePorts.join),
  );
}

/**
 * The shared start of the commands that act on one existing control plane (`NAME -n NS` plus the
 * infra cluster flags): parse, answer --help (its exit code is returned), load the infra
 * kubeconfig and read the stored spec.
 */
async function openControlPlane(
  argv: readonly string[],
  deps: ControlPlaneCommandDeps,
  helpText: string,
): Promise<number | { name: string; namespace: string; kubeConfig: KubeConfig; spec: ControlPlaneSpec }> {
  const { values, positionals } = parseFlags(
    argv,
    { namespace: SPEC_FLAGS.namespace, ...CLUSTER_FLAGS, ...HELP_FLAG },
    true,
  );
  if (values.help === true) return help(deps, helpText);
  const { name, namespace } = nameAndNamespace(positionals, values.namespace);
  const kubeConfig = loadInfraKubeConfig(values.kubeconfig, values.context);
  return { name, namespace, kubeConfig, spec: await readSpec(kubeConfig, namespace, name) };
}

async function readSpec(kubeConfig: KubeConfig, namespace: string, name: string): Promise<ControlPlaneSpec> {
  const configMap = await readObject<V1ConfigMap>(
    kubeConfig,
    KINDS.configMap,
    namespace,
    specConfigMapName({ name }),
  );
  const spec = configMap === undefined ? undefined : specFromConfigMap(configMap);
  if (spec === undefined) {
    throw new K8sOnK8sError('NOT_FOUND', `no control plane ${name} in namespace ${namespace}`, {
      hint: `k8s-on-k8s list -n ${namespace} shows the control planes there`,
    });
  }
  return spec;
}

/** Re-validates the stored spec through the same edge as the flags: the ConfigMap is input too. */
function specFromConfigMap(configMap: V1ConfigMap): ControlPlaneSpec | undefined {
  const text = configMap.data?.['spec.json'];
  if (text === undefined || configMap.metadata?.labels?.[COMPONENT_LABEL] !== undefined) return undefined;
  let stored: Record<string, unknown>;
  try {
    stored = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  const ports = (stored.nodePorts ?? {}) as Record<string, unknown>;
  return buildControlPlaneSpec({
    name: str(stored.name),
    namespace: str(stored.namespace),
    host: str(stored.host),
    joinHost: str(stored.joinHost),
    version: str(stored.kubernetesVersion),
    expose: str(stored.expose),
    ingressClass: str(stored.ingressClass),
    apiNodePort: typeof ports.api === 'number' ? String(ports.api) : undefined,
    joinNodePort: typeof ports.join === 'number' ? String(ports.join) : undefined,
    cni: str(stored.cni),
    etcdStorage: str(stored.etcdStorage) ?? 'none',
    serviceCidr: str(stored.serviceCidr),
    podCidr: str(stored.podCidr),
    vip: str(stored.vip),
  });
}

/** Writes credentials 0600 through a temp file and a rename, so no reader sees a partial file. */
async function writePrivateFile(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, path);
}

function specInput(
  positionals: readonly string[],
  values: Record<string, string | boolean | undefined>,
): ControlPlaneSpecInput {
  if (positionals.length > 1)
    throw invalid(`Expected one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  const str = (key: string): string | undefined => {
    const value = values[key];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    name: positionals[0],
    namespace: str('namespace'),
    host: str('host'),
    joinHost: str('join-host'),
    version: str('version'),
    expose: str('expose'),
    ingressClass: str('ingress-class'),
    apiNodePort: str('api-node-port'),
    joinNodePort: str('join-node-port'),
    cni: str('cni'),
    etcdStorage: str('etcd-storage'),
    serviceCidr: str('service-cidr'),
    podCidr: str('pod-cidr'),
    vip: str('vip'),
  };
}

function nameAndNamespace(
  positionals: readonly string[],
  namespace: string | undefined,
): { name: string; namespace: string } {
  const [name, ...rest] = positionals;
  if (name === undefined) throw invalid('Missing NAME: the control plane name');
  if (rest.length > 0)
    throw invalid(`Expected one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name))
    throw invalid(`Expected NAME to be a DNS label, got ${JSON.stringify(name)}`);
  return { name, namespace: requiredNamespace(namespace) };
}

function requiredNamespace(namespace: string | undefined): string {
  if (namespace === undefined) throw invalid('Missing -n/--namespace: the infra namespace');
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) {
    throw invalid(`Expected -n/--namespace to be a namespace name, got ${JSON.stringify(namespace)}`);
  }
  return namespace;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

function help(deps: ControlPlaneCommandDeps, text: string): number {
  deps.stdout(text.trimEnd());
  return 0;
}

function invalid(message: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', message);
}
