import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1PodTemplateSpec,
  type V1Service,
} from '@kubernetes/client-node';
import { CONTROL_PLANE_LABEL, componentName, type Component } from '@k8s-on-k8s/server';
import { freePort } from '../net/free-port.js';
import type { NetworkNamespace } from '../net/network-namespace.js';
import { ChildProcessGroup } from '../process/child-process-group.js';
import { REPO_ROOT } from '../repo-root.js';
import { kubeBinary } from './kube-binaries.js';
import { uniqueTestResourceName } from '../process/test-resource-name.js';

// Plays the infra cluster's kubelet for a control plane that `k8s-on-k8s create` applied: reads the
// StatefulSet, Deployments, Services and Secrets back from the infra apiserver, lays each pod's
// Secret volumes out under a temp dir, and runs the harness-built binaries (and the join server's
// own bin) with exactly the rendered args, mapping only paths, listen addresses and ports.

/** The join server's entry point, as the rendered Deployment's image runs it. */
export const JOIN_SERVER_BIN = join(
  REPO_ROOT,
  'packages',
  'server',
  'dist',
  'src',
  'bin',
  'k8s-join-server.js',
);

/** Where to find a control plane in the infra cluster, and where to run it. */
export interface RenderedControlPlaneOptions {
  readonly infraKubeConfig: KubeConfig;
  readonly name: string;
  readonly namespace: string;
  /** Run every component inside this test network namespace (`ip netns exec`); the machine's if omitted. */
  readonly netns?: NetworkNamespace;
  /**
   * Where the apiserver and the join server listen: the address `create --host` named, since their
   * certificates carry it (default 127.0.0.1).
   */
  readonly address?: string;
  /** The apiserver's port: the Service's NodePort unless given, like a NodePort exposure. */
  readonly apiPort?: number;
  /** The join server's port: the Service's NodePort unless given. */
  readonly joinPort?: number;
  /** How long to wait for `create` to have applied every workload and Secret (default 60 s). */
  readonly objectsTimeoutMs?: number;
}

/** A control plane read back from the infra cluster, whose components start on request. */
export interface RenderedControlPlane {
  readonly dir: string;
  readonly group: ChildProcessGroup;
  /** https://ADDRESS:API_PORT, where the apiserver listens. */
  readonly apiUrl: string;
  /** https://ADDRESS:JOIN_PORT, where the join server listens. */
  readonly joinUrl: string;
  /** https://127.0.0.1:PORT (inside the namespace, if any), where etcd listens. */
  readonly etcdUrl: string;
  /** The rendered pod template of each component, as stored in the infra cluster. */
  readonly workloads: ReadonlyMap<Component, V1PodTemplateSpec>;
  /** The Secrets' data (base64) by name, as stored in the infra cluster. */
  readonly secrets: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** The directory a component's mounts are laid out under, e.g. `${root}/etc/kubernetes/pki`. */
  componentRoot(component: Component): string;
  /** Lays out the component's volumes and starts it with its mapped args. */
  start(component: Component): Promise<void>;
  /** Stops every started component and removes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Writes a pod's Secret volumes (plain and projected) where its containers mount them, under root.
 * A StatefulSet's volumeClaimTemplates (named in `claims`) become empty directories.
 */
export async function materializeVolumes(
  root: string,
  template: V1PodTemplateSpec,
  secrets: ReadonlyMap<string, Readonly<Record<string, string>>>,
  claims: ReadonlySet<string>,
): Promise<void> {
  const podSpec = template.spec;
  if (podSpec === undefined) throw new Error('the pod template has no spec');
  for (const mount of podSpec.containers.flatMap((c) => c.volumeMounts ?? [])) {
    const dir = join(root, mount.mountPath);
    await mkdir(dir, { recursive: true });
    if (claims.has(mount.name)) continue;
    const volume = podSpec.volumes?.find((v) => v.name === mount.name);
    if (volume === undefined)
      throw new Error(`the pod mounts volume ${mount.name}, which it does not define`);
    const files: [string, string][] = [];
    const secretData = (name: string): Readonly<Record<string, string>> => {
      const data = secrets.get(name);
      if (data === undefined) throw new Error(`Secret ${name} was not applied`);
      return data;
    };
    if (volume.secret?.secretName !== undefined)
      files.push(...Object.entries(secretData(volume.secret.secretName)));
    for (const source of volume.projected?.sources ?? []) {
      const name = source.secret?.name ?? '';
      const data = secretData(name);
      for (const item of source.secret?.items ?? []) {
        const value = data[item.key];
        if (value === undefined) throw new Error(`Secret ${name} has no key ${item.key}`);
        files.push([item.path, value]);
      }
    }
    for (const [path, base64] of files) {
      await writeFile(join(dir, path), Buffer.from(base64, 'base64'), { mode: 0o600 });
    }
  }
}

/** Maps `--flag=value` args: overrides by flag, absolute paths under root, everything else as rendered. */
export function mapArgs(
  args: readonly string[],
  root: string,
  overrides: Readonly<Record<string, string>>,
): string[] {
  return args.map((arg) => {
    const match = /^(--[a-z0-9-]+)=(.*)$/.exec(arg);
    if (match === null) throw new Error(`Expected rendered arg ${arg} to be --flag=value`);
    const [, flag = '', value = ''] = match;
    const override = overrides[flag];
    if (override !== undefined) return `${flag}=${override}`;
    return value.startsWith('/') ? `${flag}=${join(root, value)}` : arg;
  });
}

interface StoredObjects {
  workloads: Map<Component, V1PodTemplateSpec>;
  secrets: Map<string, Record<string, string>>;
  claims: Set<string>;
  services: Map<string, V1Service>;
}

const COMPONENTS: readonly Component[] = [
  'etcd',
  'apiserver',
  'controller-manager',
  'scheduler',
  'join-server',
];

/** Every Secret a pod template mounts. */
function mountedSecrets(template: V1PodTemplateSpec): string[] {
  return (template.spec?.volumes ?? []).flatMap((volume) => [
    ...(volume.secret?.secretName === undefined ? [] : [volume.secret.secretName]),
    ...(volume.projected?.sources ?? []).flatMap((s) =>
      s.secret?.name === undefined ? [] : [s.secret.name],
    ),
  ]);
}

/** Reads what create stored, once every workload and every Secret they mount is there. */
async function readStoredObjects(options: RenderedControlPlaneOptions): Promise<StoredObjects> {
  const apps = options.infraKubeConfig.makeApiClient(AppsV1Api);
  const core = options.infraKubeConfig.makeApiClient(CoreV1Api);
  const namespace = options.namespace;
  const labelSelector = `${CONTROL_PLANE_LABEL}=${options.name}`;
  const deadline = Date.now() + (options.objectsTimeoutMs ?? 60_000);
  let missing: string[] = [];
  do {
    const [deployments, statefulSets, secretList, serviceList] = await Promise.all([
      apps.listNamespacedDeployment({ namespace, labelSelector }),
      apps.listNamespacedStatefulSet({ namespace, labelSelector }),
      core.listNamespacedSecret({ namespace, labelSelector }),
      core.listNamespacedService({ namespace, labelSelector }),
    ]);
    const stored: StoredObjects = {
      workloads: new Map(),
      secrets: new Map(secretList.items.map((s) => [s.metadata?.name ?? '', s.data ?? {}])),
      claims: new Set(),
      services: new Map(serviceList.items.map((s) => [s.metadata?.name ?? '', s])),
    };
    for (const component of COMPONENTS) {
      const name = componentName(options, component);
      const template =
        component === 'etcd'
          ? statefulSets.items.find((s) => s.metadata?.name === name)?.spec?.template
          : deployments.items.find((d) => d.metadata?.name === name)?.spec?.template;
      if (template !== undefined) stored.workloads.set(component, template);
    }
    for (const s of statefulSets.items) {
      for (const claim of s.spec?.volumeClaimTemplates ?? []) stored.claims.add(claim.metadata?.name ?? '');
    }
    missing = [
      ...COMPONENTS.filter((c) => !stored.workloads.has(c)).map(
        (c) => `workload ${componentName(options, c)}`,
      ),
      ...[...stored.workloads.values()]
        .flatMap(mountedSecrets)
        .filter((name) => !stored.secrets.has(name))
        .map((name) => `Secret ${name}`),
    ];
    if (missing.length === 0) return stored;
    await sleep(250);
  } while (Date.now() < deadline);
  throw new Error(
    `control plane ${options.name} in ${namespace} of the infra cluster is incomplete: missing ${missing.join(', ')}`,
  );
}

/** The NodePort of the component's Service, as the infra cluster allocated it. */
function nodePort(
  objects: StoredObjects,
  options: RenderedControlPlaneOptions,
  component: Component,
): number {
  const name = componentName(options, component);
  const port = objects.services.get(name)?.spec?.ports?.[0]?.nodePort;
  if (port === undefined) throw new Error(`Service ${name} has no NodePort: give the port explicitly`);
  return port;
}

/**
 * Reads a control plane `create` applied to the infra cluster and prepares its components to run
 * with exactly the rendered args: paths are mapped under a temp dir, etcd and the controllers onto
 * loopback ports, the apiserver and join server onto `address` and their NodePorts, and the in-infra
 * Service names in the component kubeconfigs onto the apiserver's real URL. Start each with start().
 */
export async function loadRenderedControlPlane(
  options: RenderedControlPlaneOptions,
): Promise<RenderedControlPlane> {
  const objects = await readStoredObjects(options);
  const address = options.address ?? '127.0.0.1';
  const apiPort = options.apiPort ?? nodePort(objects, options, 'apiserver');
  const joinPort = options.joinPort ?? nodePort(objects, options, 'join-server');
  const [etcdClient, etcdPeer, etcdMetrics, kcmPort, schedulerPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const apiUrl = `https://${address}:${apiPort}`;
  const joinUrl = `https://${address}:${joinPort}`;
  const etcdUrl = `https://127.0.0.1:${etcdClient}`;
  const inInfraApiUrl = `https://${componentName(options, 'apiserver')}.${options.namespace}.svc:443`;

  const dir = await mkdtemp(join(tmpdir(), `${uniqueTestResourceName()}-rendered-${options.name}-`));
  const group = new ChildProcessGroup(dir);
  const componentRoot = (component: Component): string => join(dir, component);
  const run = (component: Component, command: string, args: readonly string[]): void => {
    const inside =
      options.netns === undefined ? { command, args: [...args] } : options.netns.command(command, args);
    group.start(component, inside.command, inside.args);
  };

  const overrides = (component: Component): Record<string, string> => {
    const peerUrl = `https://127.0.0.1:${etcdPeer}`;
    switch (component) {
      case 'etcd':
        return {
          '--listen-client-urls': etcdUrl,
          '--advertise-client-urls': etcdUrl,
          '--listen-peer-urls': peerUrl,
          '--initial-advertise-peer-urls': peerUrl,
          '--initial-cluster': `${componentName(options, 'etcd')}-0=${peerUrl}`,
          '--listen-metrics-urls': `http://127.0.0.1:${etcdMetrics}`,
        };
      case 'apiserver':
        return { '--secure-port': String(apiPort), '--bind-address': address, '--etcd-servers': etcdUrl };
      case 'controller-manager':
        return { '--secure-port': String(kcmPort), '--bind-address': '127.0.0.1' };
      case 'scheduler':
        return { '--secure-port': String(schedulerPort), '--bind-address': '127.0.0.1' };
      case 'join-server':
        return { '--listen': `${address}:${joinPort}` };
    }
  };

  let stopped = false;
  return {
    dir,
    group,
    apiUrl,
    joinUrl,
    etcdUrl,
    workloads: objects.workloads,
    secrets: objects.secrets,
    componentRoot,
    async start(component) {
      const template = objects.workloads.get(component);
      const args = template?.spec?.containers[0]?.args ?? [];
      if (template === undefined) throw new Error(`${component} was not applied to the infra cluster`);
      const root = componentRoot(component);
      await materializeVolumes(root, template, objects.secrets, objects.claims);
      // Component kubeconfigs name the apiserver's in-infra Service; point them at where it runs.
      for (const mount of template.spec?.containers[0]?.volumeMounts ?? []) {
        if (mount.name !== 'kubeconfig') continue;
        const file = join(root, mount.mountPath, 'kubeconfig');
        const text = await readFile(file, 'utf8');
        if (!text.includes(inInfraApiUrl)) throw new Error(`${file} does not name ${inInfraApiUrl}`);
        await writeFile(file, text.replaceAll(inInfraApiUrl, apiUrl), { mode: 0o600 });
      }
      const mapped = mapArgs(args, root, overrides(component));
      if (component === 'join-server') run(component, process.execPath, [JOIN_SERVER_BIN, ...mapped]);
      else {
        const binary = component === 'etcd' ? 'etcd' : (`kube-${component}` as const);
        run(component, kubeBinary(binary), mapped);
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await group.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
