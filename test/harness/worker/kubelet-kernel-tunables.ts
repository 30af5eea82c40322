import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkerBindMount } from './worker-bind-mount.js';

/**
 * The sysctls a kubelet sets at start unless protectKernelDefaults is on, with the values it wants
 * (setupKernelTunables in pkg/kubelet/cm/container_manager_linux.go, v1.37).
 */
export const KUBELET_KERNEL_TUNABLES: Readonly<Record<string, number>> = Object.freeze({
  'vm/overcommit_memory': 1,
  'vm/panic_on_oom': 0,
  'kernel/panic': 10,
  'kernel/panic_on_oops': 1,
  'kernel/keys/root_maxkeys': 1_000_000,
  'kernel/keys/root_maxbytes': 25_000_000,
});

/**
 * Bind mounts that show a worker host's kubelet each of KUBELET_KERNEL_TUNABLES already at the value
 * it wants, so it writes none of them. These sysctls are not per-namespace: a kubelet in a worker
 * would otherwise set kernel.panic_on_oops=1 and vm.overcommit_memory=1 on the test machine itself.
 * A read-only /proc/sys does not do: the kubelet then fails to start its container manager, and
 * protectKernelDefaults makes it refuse to start on the machine's values. startWorkerHost mounts
 * these in every worker. The files are written into `dir`, which must outlive the worker.
 */
export async function maskKubeletKernelTunables(dir: string): Promise<WorkerBindMount[]> {
  await mkdir(dir, { recursive: true });
  return Promise.all(
    Object.entries(KUBELET_KERNEL_TUNABLES).map(async ([name, value]) => {
      const source = join(dir, name.replaceAll('/', '.'));
      await writeFile(source, `${value}\n`);
      return { source, target: `/proc/sys/${name}`, readOnly: true };
    }),
  );
}
