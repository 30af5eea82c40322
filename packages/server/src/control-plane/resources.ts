// Adds up what a set of workloads asks the scheduler for, so `status` can print a control plane's
// footprint and a test can hold it to the seed's promise (about 1 CPU and 1 GiB in all).
import type { KubernetesObject, V1PodTemplateSpec } from '@kubernetes/client-node';

/** CPU in millicores and memory in bytes. */
export interface ResourceTotals {
  readonly cpuMillis: number;
  readonly memoryBytes: number;
}

const MEMORY_SUFFIXES: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Sums container requests × replicas over the Deployments, StatefulSets and DaemonSets (one pod each) given. */
export function sumResourceRequests(objects: readonly KubernetesObject[]): ResourceTotals {
  let cpuMillis = 0;
  let memoryBytes = 0;
  for (const object of objects) {
    const workload = object as KubernetesObject & {
      spec?: { replicas?: number; template?: V1PodTemplateSpec };
    };
    const template = workload.spec?.template;
    if (template?.spec === undefined) continue;
    const replicas = object.kind === 'DaemonSet' ? 1 : (workload.spec?.replicas ?? 1);
    for (const container of template.spec.containers) {
      const requests = container.resources?.requests ?? {};
      cpuMillis += replicas * parseCpu(requests.cpu ?? '0');
      memoryBytes += replicas * parseMemory(requests.memory ?? '0');
    }
  }
  return { cpuMillis, memoryBytes };
}

/** `550m CPU, 544Mi memory`. */
export function formatResourceTotals(totals: ResourceTotals): string {
  return `${totals.cpuMillis}m CPU, ${Math.round(totals.memoryBytes / 2 ** 20)}Mi memory`;
}

/** Parses a Kubernetes CPU quantity (`250m`, `1`, `0.5`) into millicores. */
export function parseCpu(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
  if (match === null) throw new RangeError(`not a CPU quantity: ${JSON.stringify(quantity)}`);
  const value = Number(match[1]);
  return match[2] === 'm' ? value : value * 1000;
}

/** Parses a Kubernetes memory quantity (`128Mi`, `1Gi`, `500M`, `1024`) into bytes. */
export function parseMemory(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)([kMGT]i?|Ki)?$/.exec(quantity);
  const factor = MEMORY_SUFFIXES[match?.[2] ?? ''];
  if (match === null || factor === undefined) {
    throw new RangeError(`not a memory quantity: ${JSON.stringify(quantity)}`);
  }
  return Number(match[1]) * factor;
}
