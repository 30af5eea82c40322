import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { isPortTaken, parseListeningSockets } from '../node/listening-ports.js';
import { KUBELET_PORT } from '../node/node-paths.js';
import type { NodeSystem } from '../node/node-system.js';

/** The names `--ignore-preflight-errors` takes. */
export const PREFLIGHT_CHECKS = ['root', 'systemd', 'kubelet-binary', 'container-runtime', 'ports'] as const;
export type PreflightCheck = (typeof PREFLIGHT_CHECKS)[number];

/** What preflight looks at. */
export interface PreflightInput {
  readonly kubeletBinary: string;
  readonly containerRuntimeEndpoint: string;
  readonly vip: string;
  /** A previous join of this machine: its ports and units are ours, not a conflict. */
  readonly alreadyJoined: boolean;
  readonly ignore: ReadonlySet<PreflightCheck>;
}

/** One failed check: its name (for --ignore-preflight-errors), what is wrong, what to do. */
export interface PreflightProblem {
  readonly check: PreflightCheck;
  readonly message: string;
  readonly hint: string;
}

/** Runs every check and returns the problems not ignored; the caller prints them all at once. */
export async function runPreflight(system: NodeSystem, input: PreflightInput): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const add = (check: PreflightCheck, message: string, hint: string): void => {
    if (!input.ignore.has(check)) problems.push({ check, message, hint });
  };
  if (system.uid() !== 0) {
    add('root', 'k8s-join must run as root', 'run it with sudo, or from a root systemd unit / cloud-init');
  }
  // sd_booted(3): systemd is PID 1 exactly when /run/systemd/system exists.
  if (!(await system.exists('/run/systemd/system'))) {
    add(
      'systemd',
      'systemd is not running as the init system (/run/systemd/system is missing)',
      'k8s-join manages the kubelet and the forwarder as systemd units; use a systemd Linux',
    );
  }
  if (!(await system.isExecutable(input.kubeletBinary))) {
    add(
      'kubelet-binary',
      `no executable kubelet at ${input.kubeletBinary}`,
      'install the kubelet of the cluster version there, or pass --kubelet-binary PATH',
    );
  }
  const socketPath = input.containerRuntimeEndpoint.replace(/^unix:\/\//, '');
  if (!(await system.isSocket(socketPath))) {
    add(
      'container-runtime',
      `no container runtime socket at ${socketPath}`,
      'start containerd (systemctl enable --now containerd), or pass --container-runtime-endpoint',
    );
  }
  if (!input.alreadyJoined) {
    const tables = (await system.readText('/proc/net/tcp')) ?? '';
    const tables6 = (await system.readText('/proc/net/tcp6')) ?? '';
    const sockets = [...parseListeningSockets(tables), ...parseListeningSockets(tables6)];
    if (isPortTaken(sockets, '127.0.0.1', KUBELET_PORT)) {
      add(
        'ports',
        `port ${KUBELET_PORT} (kubelet) is already in use`,
        'another kubelet runs here; `k8s-join reset` or stop it first',
      );
    }
    if (isPortTaken(sockets, input.vip, 443)) {
      add(
        'ports',
        `port 443 on ${input.vip} is already in use`,
        'something else listens on the API VIP; stop it first',
      );
    }
  }
  return problems;
}

/** Turns preflight problems into one error that lists each with its hint. */
export function preflightError(problems: readonly PreflightProblem[]): K8sOnK8sError {
  const lines = problems.map((p) => `  [${p.check}] ${p.message}\n      hint: ${p.hint}`);
  return new K8sOnK8sError(
    'PRECONDITION_FAILED',
    `preflight found ${problems.length} problem(s):\n${lines.join('\n')}`,
    {
      hint: `fix them, or skip a check with --ignore-preflight-errors=${problems.map((p) => p.check).join(',')}`,
    },
  );
}
