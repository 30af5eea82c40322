import { isIP } from 'node:net';
import { stringify as stringifyYaml } from 'yaml';
import { formatHostPort, type JoinBundle } from '@k8s-on-k8s/shared';
import { SECURE_KUBELET_SETTINGS } from './kubelet-security.js';
import {
  FORWARDER_UNIT_NAME,
  KONNECTIVITY_FORWARDER_UNIT_NAME,
  KUBELET_UNIT_NAME,
  NODE_PATHS,
} from './node-paths.js';

/** One file the agent writes: where, with which mode, and what. */
export interface NodeFile {
  readonly path: string;
  readonly mode: number;
  readonly content: string;
  /** True when the content carries a credential: never printed, written 0600. */
  readonly secret: boolean;
}

/** Choices of the person running k8s-join that shape the files, beside the server's bundle. */
export interface NodeFileOptions {
  readonly nodeName: string;
  readonly kubeletBinary: string;
  readonly agentBinary: readonly string[];
  readonly containerRuntimeEndpoint: string;
  /** The kubelet's maxPods (k8s-join --max-pods); the kubelet's default when absent. */
  readonly maxPods?: number;
  /** The API endpoint's address (an IP literal, checked by the bundle schema) and port. */
  readonly vip: string;
  readonly apiPort: number;
}

/** The units a join with this bundle enables and starts, in start order. */
export function nodeUnits(bundle: JoinBundle): string[] {
  return [
    FORWARDER_UNIT_NAME,
    ...(bundle.konnectivity === undefined ? [] : [KONNECTIVITY_FORWARDER_UNIT_NAME]),
    KUBELET_UNIT_NAME,
  ];
}

/** The VIP as `ip addr` takes it: a single address, /32 or /128. */
export function vipWithPrefix(vip: string): string {
  return `${vip}/${isIP(vip) === 6 ? 128 : 32}`;
}

/**
 * Renders every file a join writes, from the bundle and the local options: a pure function, so
 * `--dry-run`, the golden-file tests and the real join agree byte for byte.
 */
export function renderNodeFiles(bundle: JoinBundle, options: NodeFileOptions): NodeFile[] {
  return [
    { path: NODE_PATHS.caCert, mode: 0o644, content: ensureNewline(bundle.caCert), secret: false },
    { path: NODE_PATHS.bootstrapKubeconfig, mode: 0o600, content: bundle.bootstrapKubeconfig, secret: true },
    {
      path: NODE_PATHS.kubeletConfig,
      mode: 0o644,
      content: renderKubeletConfig(bundle, options),
      secret: false,
    },
    {
      path: NODE_PATHS.kubeletFlagsEnv,
      mode: 0o644,
      content: renderKubeletFlagsEnv(bundle, options),
      secret: false,
    },
    { path: NODE_PATHS.upstreams, mode: 0o644, content: renderUpstreams(bundle), secret: false },
    { path: NODE_PATHS.forwarderUnit, mode: 0o644, content: renderForwarderUnit(options), secret: false },
    ...(bundle.konnectivity === undefined
      ? []
      : [
          {
            path: NODE_PATHS.konnectivityUpstreams,
            mode: 0o644,
            content: `# konnectivity proxy-server endpoints the second forwarder relays the VIP to (written by k8s-join)\n${bundle.konnectivity.upstreams.join('\n')}\n`,
            secret: false,
          },
          {
            path: NODE_PATHS.konnectivityForwarderUnit,
            mode: 0o644,
            content: renderForwarderUnit(options, {
              port: bundle.konnectivity.port,
              upstreamsFile: NODE_PATHS.konnectivityUpstreams,
              name: 'konnectivity',
              what: 'the konnectivity proxy servers',
              comment:
                "Relays the VIP's konnectivity port to the hosted control plane's proxy servers, for the konnectivity agent.",
            }),
            secret: false,
          },
        ]),
    { path: NODE_PATHS.kubeletUnit, mode: 0o644, content: renderKubeletUnit(options), secret: false },
    { path: NODE_PATHS.kubeletDropIn, mode: 0o644, content: renderKubeletDropIn(options), secret: false },
  ];
}

/**
 * The KubeletConfiguration: the server's, with the node-local facts the agent owns forced on top
 * (paths on this machine, certificate rotation, the runtime endpoint) and the kubelet API's
 * security settings written out (verifyJoinBundle has refused a server copy that weakens them).
 */
export function renderKubeletConfig(bundle: JoinBundle, options: NodeFileOptions): string {
  const fromServer = bundle.kubeletConfig as Record<string, unknown>;
  const authentication = (fromServer.authentication ?? {}) as Record<string, unknown>;
  const x509 = (authentication.x509 ?? {}) as Record<string, unknown>;
  const anonymous = (authentication.anonymous ?? {}) as Record<string, unknown>;
  const authorization = (fromServer.authorization ?? {}) as Record<string, unknown>;
  const config = {
    ...fromServer,
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    authentication: {
      ...authentication,
      anonymous: { ...anonymous, enabled: SECURE_KUBELET_SETTINGS.anonymousAuthentication },
      x509: { ...x509, clientCAFile: NODE_PATHS.caCert },
    },
    authorization: { ...authorization, mode: SECURE_KUBELET_SETTINGS.authorizationMode },
    readOnlyPort: SECURE_KUBELET_SETTINGS.readOnlyPort,
    clusterDNS: [bundle.cluster.dnsIP],
    clusterDomain: bundle.cluster.domain,
    // The kubelet renews its own client certificate before expiry (CSR approved by the
    // controller-manager for system:nodes), so a node never needs the join token again.
    rotateCertificates: true,
    containerRuntimeEndpoint: options.containerRuntimeEndpoint,
    ...(options.maxPods === undefined ? {} : { maxPods: options.maxPods }),
  };
  return `# Written by k8s-join from the join server's bundle; a re-join rewrites it.\n${stringifyYaml(config)}`;
}

/** Per-node kubelet flags that have no KubeletConfiguration field, as kubeadm-flags.env does. */
export function renderKubeletFlagsEnv(bundle: JoinBundle, options: NodeFileOptions): string {
  const args = [`--hostname-override=${options.nodeName}`];
  const labels = Object.entries(bundle.nodeLabels ?? {});
  if (labels.length > 0) args.push(`--node-labels=${labels.map(([k, v]) => `${k}=${v}`).join(',')}`);
  const taints = bundle.nodeTaints ?? [];
  if (taints.length > 0) {
    args.push(
      `--register-with-taints=${taints.map((t) => `${t.key}${t.value === undefined ? '' : `=${t.value}`}:${t.effect}`).join(',')}`,
    );
  }
  return `# Written by k8s-join; per-node kubelet flags.\nKUBELET_K8S_JOIN_ARGS="${args.join(' ')}"\n`;
}

/** The forwarder's upstream list, one host:port a line; a reload (SIGHUP) re-reads it. */
export function renderUpstreams(bundle: JoinBundle): string {
  return `# apiserver endpoints the forwarder relays the VIP to (written by k8s-join)\n${bundle.apiServer.upstreams.join('\n')}\n`;
}

/** What one forwarder unit relays: the API (the default), or konnectivity's agent port. */
export interface ForwarderTarget {
  readonly port: number;
  readonly upstreamsFile: string;
  /** The unit's Description: `k8s-join <name> forwarder (<listen> to <what>)`. */
  readonly name: string;
  readonly what: string;
  /** The unit file's first comment, after "Written by k8s-join." */
  readonly comment: string;
}

/** The forwarder unit: VIP on lo, then `k8s-join forward` from VIP:port to the upstreams. */
export function renderForwarderUnit(
  options: NodeFileOptions,
  target: ForwarderTarget = {
    port: options.apiPort,
    upstreamsFile: NODE_PATHS.upstreams,
    name: 'API',
    what: 'the hosted apiserver',
    comment: "Relays the API VIP to the hosted control plane's apiserver.",
  },
): string {
  const listen = formatHostPort({ host: options.vip, port: target.port });
  const exec = [
    ...options.agentBinary,
    'forward',
    `--listen=${listen}`,
    `--upstreams-file=${target.upstreamsFile}`,
  ];
  return `# Written by k8s-join. ${target.comment}
[Unit]
Description=k8s-join ${target.name} forwarder (${listen} to ${target.what})
Documentation=https://github.com/k8s-on-k8s/k8s-on-k8s
Wants=network-online.target
After=network-online.target
Before=${KUBELET_UNIT_NAME}

[Service]
# Ready only once the listener is bound. The notification is sent by the systemd-notify helper,
# a child of the forwarder, so systemd must accept it from any process of the unit.
Type=notify
NotifyAccess=all
# The VIP is every in-cluster client's address of the apiserver (the kubernetes Service endpoint);
# "replace" makes this idempotent, and running it at each start puts it back after a reboot.
ExecStartPre=ip addr replace ${vipWithPrefix(options.vip)} dev lo
ExecStart=${exec.join(' ')}
ExecReload=kill -HUP $MAINPID
Restart=always
RestartSec=2
# The forwarder drains open connections for up to 30 s on SIGTERM; past that, systemd may kill.
TimeoutStopSec=40
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/** The kubelet unit, as kubeadm's packages ship it: flags come from the drop-in. */
export function renderKubeletUnit(options: NodeFileOptions): string {
  return `# Written by k8s-join. Flags live in ${KUBELET_UNIT_NAME}.d/10-k8s-join.conf.
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target k8s-join-forwarder.service containerd.service

[Service]
ExecStart=${options.kubeletBinary}
Restart=always
RestartSec=10
StartLimitIntervalSec=0

[Install]
WantedBy=multi-user.target
`;
}

/** The kubelet drop-in with the bootstrap flags; extras go in /etc/default/kubelet (KUBELET_EXTRA_ARGS). */
export function renderKubeletDropIn(options: NodeFileOptions): string {
  return `# Written by k8s-join.
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=${NODE_PATHS.bootstrapKubeconfig} --kubeconfig=${NODE_PATHS.kubeletKubeconfig}"
Environment="KUBELET_CONFIG_ARGS=--config=${NODE_PATHS.kubeletConfig}"
EnvironmentFile=-${NODE_PATHS.kubeletFlagsEnv}
EnvironmentFile=-${NODE_PATHS.kubeletExtraEnv}
ExecStart=
ExecStart=${options.kubeletBinary} $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_K8S_JOIN_ARGS $KUBELET_EXTRA_ARGS
`;
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}
