import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { FORWARDER_UNIT_NAME, KUBELET_UNIT_NAME } from './node-paths.js';
import type { NodeSystem } from './node-system.js';

/** Runs systemctl; a failure becomes an error with systemctl's own words. */
export async function systemctl(system: NodeSystem, args: readonly string[]): Promise<void> {
  const result = await system.run('systemctl', args);
  if (result.exitCode !== 0) {
    throw new K8sOnK8sError(
      'PRECONDITION_FAILED',
      `systemctl ${args.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`,
      {
        hint: `look at \`systemctl status ${args[args.length - 1] ?? ''}\` and its journal`,
      },
    );
  }
}

/**
 * daemon-reload when files changed, then enable and start the forwarder and kubelet units. Only
 * units that were already running before this run are restarted to pick up changed files:
 * restarting a unit systemd has just started races its start-up (a forwarder stopped before it
 * finished starting cost a 90 s stop timeout in the join storm).
 */
export async function startNodeUnits(
  system: NodeSystem,
  filesChanged: boolean,
  units: readonly string[] = [FORWARDER_UNIT_NAME, KUBELET_UNIT_NAME],
): Promise<void> {
  const wasActive = await Promise.all(
    units.map(async (unit) => (await system.run('systemctl', ['is-active', '--quiet', unit])).exitCode === 0),
  );
  if (filesChanged) await systemctl(system, ['daemon-reload']);
  await systemctl(system, ['enable', '--now', ...units]);
  const stale = units.filter((_, i) => filesChanged && wasActive[i] === true);
  if (stale.length > 0) await systemctl(system, ['restart', ...stale]);
}
