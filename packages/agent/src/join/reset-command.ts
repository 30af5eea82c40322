// `k8s-join reset`: undoes a join using the state file it left: stops and removes both units,
// takes the VIP off lo, deletes the files join wrote and the credentials the kubelet obtained with
// them. Anything else on the machine stays.
import { parseFlags } from '@k8s-on-k8s/shared';
import { readJoinState } from './join-state.js';
import { NODE_PATHS } from '../node/node-paths.js';
import type { NodeSystem } from '../node/node-system.js';
import { vipWithPrefix } from '../node/render-node-files.js';

export const RESET_HELP = `Usage: k8s-join reset [--root DIR]

Undoes \`k8s-join join\` on this machine, from the record it left in ${NODE_PATHS.state}:
  - stops and disables kubelet.service and the forwarders (k8s-join-forwarder.service, and
    k8s-join-konnectivity-forwarder.service where the join made one), removes their unit files
  - removes the API VIP from lo
  - deletes the files join wrote (CA, bootstrap kubeconfig, kubelet config and flags, upstreams)
  - deletes the credentials the kubelet obtained with them (${NODE_PATHS.kubeletKubeconfig},
    ${NODE_PATHS.kubeletPkiDir}/kubelet-client-*), so the machine can join again as a new node
Nothing else is touched: container images, pod data and files you wrote yourself stay.
The Node object stays in the cluster; delete it there (kubectl delete node NAME).`;

/** What reset needs from the process beside the machine. */
export interface ResetCommandDeps {
  /** The machine, with files under `root` (`/` unless --root). */
  readonly systemAt: (root: string) => NodeSystem;
  readonly out: (line: string) => void;
}

/** Runs `k8s-join reset`; resolves with the process exit code. */
export async function runResetCommand(argv: readonly string[], deps: ResetCommandDeps): Promise<number> {
  const { values } = parseFlags(argv, { root: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help === true) {
    deps.out(RESET_HELP);
    return 0;
  }
  const { out } = deps;
  const system = deps.systemAt(values.root ?? '/');
  const state = await readJoinState(system.path(NODE_PATHS.state));
  if (state === undefined) {
    out(`nothing to reset: no join recorded in ${NODE_PATHS.state}`);
    return 0;
  }
  // Newest first: the kubelet goes before the forwarders, so its API connections close. The
  // forwarders go together, in one systemctl call (systemd runs the stop jobs at once): pods still
  // running on the machine (kube-proxy's watches, the konnectivity agent's tunnel) keep
  // connections open, and each forwarder waits its drain timeout for them.
  const [newest, ...rest] = [...state.units].reverse();
  for (const batch of [newest === undefined ? [] : [newest], rest]) {
    if (batch.length === 0) continue;
    const together = await system.run('systemctl', ['disable', '--now', ...batch]);
    for (const unit of batch) {
      // One unit that is gone fails the whole call: then each on its own. A unit that is already
      // gone is what reset wants; only report other failures.
      const result =
        together.exitCode === 0 || batch.length === 1
          ? together
          : await system.run('systemctl', ['disable', '--now', unit]);
      out(
        result.exitCode === 0
          ? `[units] stopped and disabled ${unit}`
          : `[units] ${unit}: ${result.stderr.trim() || 'not loaded'}`,
      );
    }
  }
  const vip = await system.run('ip', ['addr', 'del', vipWithPrefix(state.vip), 'dev', 'lo']);
  out(vip.exitCode === 0 ? `[network] removed ${state.vip} from lo` : `[network] ${state.vip} was not on lo`);

  const kubeletCredentials = [NODE_PATHS.kubeletKubeconfig, ...(await kubeletClientCertificates(system))];
  for (const path of [...state.files, ...kubeletCredentials]) {
    if (await system.remove(path)) out(`[files] removed ${path}`);
  }
  await system.run('systemctl', ['daemon-reload']);
  await system.remove(NODE_PATHS.state);
  for (const dir of state.directories) await system.removeEmptyDir(dir);
  out(
    `reset done: ${state.nodeName} no longer runs a kubelet for ${state.server}; delete its Node there if it should go`,
  );
  return 0;
}

async function kubeletClientCertificates(system: NodeSystem): Promise<string[]> {
  const names = await system.list(NODE_PATHS.kubeletPkiDir);
  return names.filter((n) => n.startsWith('kubelet-client-')).map((n) => `${NODE_PATHS.kubeletPkiDir}/${n}`);
}
