import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { caCertHash, parseKubeconfig, resolveKubeconfig } from '@k8s-on-k8s/shared';
import {
  COMPONENTS,
  COMPONENT_LABEL,
  CONTROL_PLANE_LABEL,
  buildControlPlaneSpec,
  completeControlPlanePki,
  componentName,
  renderControlPlane,
  renderHostedAssets,
} from '@k8s-on-k8s/server';
import { NODE_IMAGES_MOUNT, importImages } from '../image/node-images.js';
import { relayFromNamespace, type NamespaceRelay } from '../net/namespace-relay.js';
import type { NetworkNamespace } from '../net/network-namespace.js';
import type { CommandResult } from '../process/command-result.js';
import { eventually } from '../process/eventually.js';
import { runCommand } from '../process/run-command.js';
import { startJoinWorker, type JoinWorker } from '../worker/join-worker.js';
import { startInfraCluster, workloadImages, type InfraCluster } from './infra-cluster.js';
import { installOperator } from './operator-install.js';
import { kubeBinary } from './kube-binaries.js';
import { isPodReady } from './pod-lines.js';
import { REPO_ROOT } from '../repo-root.js';
import { uniqueTestResourceName } from '../process/test-resource-name.js';

// The end-to-end tier's whole story with every object running for real: an infra cluster with a
// real node (startInfraCluster), `k8s-on-k8s create` run by an admin in the control-plane namespace
// (where the infra API and the node's NodePorts route), the control plane as pods on that node, and
// hosted workers booted like fresh machines (images imported, no CNI until the hosted cluster's
// own flannel installs one) that reach the NodePorts through the admin's namespace as a router.

/** The admin CLI, as `npm run build` leaves it. */
export const K8S_ON_K8S_BIN = join(REPO_ROOT, 'packages', 'server', 'dist', 'src', 'bin', 'k8s-on-k8s.js');

/** What startHostedOnInfra makes. */
export interface HostedOnInfraOptions {
  /** The control plane's name (`create NAME`). */
  readonly name: string;
  /** The infra namespace it lives in (created here). */
  readonly namespace: string;
  readonly apiNodePort?: number;
  readonly joinNodePort?: number;
  /** The konnectivity agents' NodePort (default 30132). */
  readonly konnectivityNodePort?: number;
  /** create's `--konnectivity` (default true). */
  readonly konnectivity?: boolean;
  /** create's `--version` (default: the project's default release). */
  readonly kubernetesVersion?: string;
  /** create's `--wait` (default 4m). */
  readonly wait?: string;
  /**
   * Install k8s-on-k8s-operator into the infra cluster (deploy/operator/, its image imported on the
   * node) and run `create --via-operator`: the operator, a pod there, does the work.
   */
  readonly viaOperator?: boolean;
  /** Progress lines (create's own output included). */
  readonly log?: (line: string) => void;
}

/** A hosted control plane running as pods on the infra cluster's node. */
export interface HostedOnInfra {
  readonly name: string;
  readonly namespace: string;
  readonly infra: InfraCluster;
  /** The admin's namespace: the infra API and the node's NodePorts route from here; workers' gateway. */
  readonly cpNetns: NetworkNamespace;
  /** The node's address: create's --host, where the NodePorts answer. */
  readonly host: string;
  readonly apiUrl: string;
  readonly joinUrl: string;
  /** The admin's working directory: create wrote NAME.kubeconfig here. */
  readonly dir: string;
  readonly kubeconfigPath: string;
  /** The infra cluster's admin kubeconfig as the admin's namespace reaches it. */
  readonly infraKubeconfigPath: string;
  readonly caPem: string;
  readonly caCertHash: string;
  /** Everything create printed. */
  readonly createOutput: string;
  /** From starting create to every control-plane pod Ready (seen by polling the infra API). */
  readonly createToPodsReadyMs: number;
  /** From starting create to its `readyz: ok` line (the hosted /readyz through the NodePort). */
  readonly createToReadyzMs: number;
  /** From starting create to its exit (hosted assets installed). */
  readonly createMs: number;
  /** The images of the control plane's pods, imported into the infra node. */
  readonly controlPlaneImages: readonly string[];
  /** The images of the hosted add-ons (kube-proxy, flannel, CoreDNS), imported into every worker. */
  readonly addonImages: readonly string[];
  /** NAME.kubeconfig as a client of this process (a loopback relay to the NodePort). */
  hostedKubeConfig(): KubeConfig;
  /** `k8s-on-k8s ARGS`, run in the admin's namespace and directory. */
  cli(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** The kubectl built from k8s.io/kubernetes/cmd/kubectl, in the admin's namespace, with NAME.kubeconfig. */
  kubectl(args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** The same kubectl as a command line to spawn, for what runs until stopped (port-forward, logs -f). */
  kubectlCommand(args: readonly string[]): { command: string; args: string[] };
  /** The control plane's pods in the infra namespace. */
  controlPlanePods(): Promise<V1Pod[]>;
  /**
   * Boots a hosted worker wired to the admin's namespace: the add-on images (and `extraImages`)
   * imported, the harness bridge CNI config removed (the hosted cluster's flannel brings its own),
   * and a resolver that refuses at once (CoreDNS's `loop` check must not find itself). With
   * `behindNat`, the admin's namespace treats the worker as a NAT gateway would: its connections
   * out to the infra node leave with the gateway's address, and nothing on the infra side can
   * open a connection to it (the kubelet's 10250 included).
   */
  startWorker(options: {
    index: number;
    hostname: string;
    dir: string;
    extraImages?: readonly string[];
    behindNat?: boolean;
  }): Promise<JoinWorker>;
  /** Stops everything; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Makes the admin's namespace a NAT gateway for worker `index`'s subnet towards the infra node's
 * (198.18.0.0/24): outgoing connections are masqueraded to the gateway's address, and new ones from
 * the infra side into the subnet are dropped. Replies to the worker's own connections still pass
 * (conntrack), as through a home router; other workers still reach it (flannel between workers).
 */
async function natWorkerSubnet(cpNetns: NetworkNamespace, index: number): Promise<void> {
  const subnet = `198.18.${String(index)}.0/24`;
  const infraSide = '198.18.0.0/24';
  const rules: string[][] = [
    ['-t', 'nat', '-A', 'POSTROUTING', '-s', subnet, '-d', infraSide, '-j', 'MASQUERADE'],
    ['-A', 'FORWARD', '-s', infraSide, '-d', subnet, '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'],
  ];
  for (const rule of rules) {
    const added = await cpNetns.run('iptables', ['-w', ...rule]);
    if (added.exitCode !== 0)
      throw new Error(`iptables ${rule.join(' ')} in ${cpNetns.name}: ${added.stderr}`);
  }
}

/** The pods of `name`'s components, by component, Ready or not. */
function readiness(pods: readonly V1Pod[]): Map<string, boolean> {
  const ready = new Map<string, boolean>();
  for (const pod of pods) {
    const component = pod.metadata?.labels?.[COMPONENT_LABEL] ?? '';
    ready.set(component, (ready.get(component) ?? false) || isPodReady(pod));
  }
  return ready;
}

/**
 * Starts the infra cluster, imports the control plane's images into its node and runs the real
 * `k8s-on-k8s create … --wait` as an admin would, in the admin's namespace: it applies the objects,
 * the node's kubelet runs them, and create returns once the hosted /readyz answers through the
 * NodePort and the hosted assets are installed.
 */
export async function startHostedOnInfra(options: HostedOnInfraOptions): Promise<HostedOnInfra> {
  const log = options.log ?? (() => undefined);
  const apiNodePort = options.apiNodePort ?? 30443;
  const joinNodePort = options.joinNodePort ?? 30843;
  const konnectivity = options.konnectivity ?? true;
  const konnectivityNodePort = konnectivity ? (options.konnectivityNodePort ?? 30132) : undefined;
  const cleanups: (() => Promise<void>)[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const undo of cleanups.splice(0).reverse()) await undo().catch(() => undefined);
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), `${uniqueTestResourceName()}-${options.name}-admin-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    log('infra cluster: apiserver, controller-manager, scheduler and a node joined by k8s-join');
    const infra = await startInfraCluster({ name: `${options.name}-infra` });
    cleanups.push(() => infra.stop());
    const { cpNetns } = infra;
    const host = infra.nodeAddress;
    // The admin's namespace routes between the hosted workers' links and the node's, as the
    // network between a lab and a cloud would.
    const forwarding = await cpNetns.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    if (forwarding.exitCode !== 0) throw new Error(`ip_forward in ${cpNetns.name}: ${forwarding.stderr}`);
    await infra.api
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: options.namespace } } });

    const spec = buildControlPlaneSpec({
      name: options.name,
      namespace: options.namespace,
      host,
      nodePorts: { api: apiNodePort, join: joinNodePort, konnectivity: konnectivityNodePort },
      konnectivity,
      ...(options.kubernetesVersion === undefined ? {} : { kubernetesVersion: options.kubernetesVersion }),
    });
    const { pki } = await completeControlPlanePki(spec, {});
    const controlPlaneImages = workloadImages(renderControlPlane(spec, pki));
    const addonImages = workloadImages(renderHostedAssets(spec));
    log(`infra node: ctr images import ${controlPlaneImages.join(' ')}`);
    await infra.importImages(controlPlaneImages);
    if (options.viaOperator === true) await installOperator(infra, log);

    const infraKubeconfigPath = join(dir, 'infra.kubeconfig');
    await writeFile(
      infraKubeconfigPath,
      infra.api.adminKubeconfig.replace(infra.api.url, infra.exposedApiUrl),
      { mode: 0o600 },
    );
    const cli = (args: readonly string[], timeoutMs = 60_000, onLine?: (line: string) => void) => {
      const inside = cpNetns.command(process.execPath, [K8S_ON_K8S_BIN, ...args]);
      return runCommand(inside.command, inside.args, { cwd: dir, timeoutMs, onLine });
    };
    const core = infra.api.kubeConfig().makeApiClient(CoreV1Api);
    const controlPlanePods = async (): Promise<V1Pod[]> =>
      (
        await core.listNamespacedPod({
          namespace: options.namespace,
          labelSelector: `${CONTROL_PLANE_LABEL}=${options.name}`,
        })
      ).items;

    log(`k8s-on-k8s create ${options.name} -n ${options.namespace} --host ${host}`);
    const createStart = Date.now();
    let readyzAt: number | undefined;
    const allPodsReady = async (): Promise<boolean> => {
      const ready = readiness(await controlPlanePods().catch(() => []));
      return COMPONENTS.every((component) => ready.get(component) === true);
    };
    // Polled while create runs, so the figure is when the pods turned Ready, not when create returned.
    const watch: { creating: boolean; podsReadyAt?: number } = { creating: true };
    const watching = (async () => {
      while (watch.creating && watch.podsReadyAt === undefined) {
        if (await allPodsReady()) watch.podsReadyAt = Date.now();
        else await sleep(250);
      }
    })();
    const created = await cli(
      [
        ...['create', options.name, '-n', options.namespace, '--host', host],
        ...['--api-node-port', String(apiNodePort), '--join-node-port', String(joinNodePort)],
        ...(konnectivityNodePort === undefined
          ? ['--konnectivity=false']
          : ['--konnectivity-node-port', String(konnectivityNodePort)]),
        ...['--kubeconfig', infraKubeconfigPath, '--wait', options.wait ?? '4m'],
        ...(options.kubernetesVersion === undefined ? [] : ['--version', options.kubernetesVersion]),
        ...(options.viaOperator === true ? ['--via-operator'] : []),
      ],
      360_000,
      (line) => {
        // With --via-operator, create sees the resource turn Available, the hosted /readyz included.
        if (readyzAt === undefined && /readyz: ok|: Available after/.test(line)) readyzAt = Date.now();
        if (!line.startsWith('applied ')) log(`  create: ${line}`);
      },
    );
    const createMs = Date.now() - createStart;
    watch.creating = false;
    await watching;
    if (created.exitCode !== 0 || readyzAt === undefined) {
      throw new Error(
        `k8s-on-k8s create exited ${created.exitCode}\n${created.stdout}\n${created.stderr}\n${await infra.podLogs()}`,
      );
    }
    // create returns at the hosted /readyz; the join server may turn Ready a moment later.
    const podsReadyAt =
      watch.podsReadyAt ??
      (await eventually('every control-plane pod Ready', 60_000, async () =>
        (await allPodsReady()) ? Date.now() : undefined,
      ));

    const kubeconfigPath = join(dir, `${options.name}.kubeconfig`);
    const kubeconfigText = await readFile(kubeconfigPath, 'utf8');
    const caPem = resolveKubeconfig(parseKubeconfig(kubeconfigText, kubeconfigPath)).caPem ?? '';
    const relay: NamespaceRelay = await relayFromNamespace({
      netns: cpNetns,
      address: host,
      port: apiNodePort,
    });
    cleanups.push(() => relay.stop());
    const serviceName = `${componentName(options, 'apiserver')}.${options.namespace}.svc`;
    const kubectl = kubeBinary('kubectl');

    return {
      name: options.name,
      namespace: options.namespace,
      infra,
      cpNetns,
      host,
      apiUrl: `https://${host}:${apiNodePort}`,
      joinUrl: `https://${host}:${joinNodePort}`,
      dir,
      kubeconfigPath,
      infraKubeconfigPath,
      caPem,
      caCertHash: caCertHash(caPem),
      createOutput: `${created.stdout}${created.stderr}`,
      createToPodsReadyMs: podsReadyAt - createStart,
      createToReadyzMs: readyzAt - createStart,
      createMs,
      controlPlaneImages,
      addonImages,
      hostedKubeConfig() {
        const kubeConfig = new KubeConfig();
        kubeConfig.loadFromString(kubeconfigText);
        const cluster = kubeConfig.getCurrentCluster();
        if (cluster === null) throw new Error(`${kubeconfigPath} has no current cluster`);
        kubeConfig.clusters = kubeConfig.clusters.map((c) =>
          c.name === cluster.name
            ? { ...c, server: `https://127.0.0.1:${relay.port}`, tlsServerName: serviceName }
            : c,
        );
        return kubeConfig;
      },
      cli: (args, timeoutMs) => cli(args, timeoutMs),
      kubectlCommand: (args) => cpNetns.command(kubectl, ['--kubeconfig', kubeconfigPath, ...args]),
      kubectl(args, { input, timeoutMs = 120_000 } = {}) {
        const inside = cpNetns.command(kubectl, ['--kubeconfig', kubeconfigPath, ...args]);
        return runCommand(inside.command, inside.args, { cwd: dir, timeoutMs, input });
      },
      controlPlanePods,
      async startWorker({ index, hostname, dir: workerDir, extraImages = [], behindNat = false }) {
        if (behindNat) await natWorkerSubnet(cpNetns, index);
        const worker = await startJoinWorker({
          cluster: { cpNetns },
          index,
          hostname,
          dir: workerDir,
          bindMounts: [NODE_IMAGES_MOUNT],
        });
        try {
          const removed = await worker.host.exec('rm', ['-f', '/etc/cni/net.d/10-k8s-on-k8s.conflist']);
          if (removed.exitCode !== 0) throw new Error(`removing the harness CNI config: ${removed.stderr}`);
          await worker.host.writeFile('/etc/resolv.conf', `nameserver 198.18.${index}.1\n`);
          await importImages(worker.host, [...addonImages, ...extraImages]);
          return worker;
        } catch (error) {
          await worker.stop();
          throw error;
        }
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
