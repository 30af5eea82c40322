// The HostedControlPlane controller: an informer loop (kube/list-watch.ts) over the resources and
// over the Deployments and StatefulSets they own, a work queue with per-key exponential backoff, and
// a reconcile that calls the same core as `k8s-on-k8s create` (ensureControlPlane, without
// blocking on readiness), then reports what it sees as status and Events. No library: none of the
// TypeScript controller frameworks is kept up as client-node is, and this loop is small.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError, isK8sOnK8sError, ValidationError } from '@k8s-on-k8s/shared';
import { CONTROL_PLANE_LABEL } from '../contract.js';
import {
  deleteControlPlane,
  ensureControlPlane,
  installHostedAssets,
  readExistingPki,
} from '../control-plane/reconcile.js';
import { describePodProblems } from '../control-plane/pod-problems.js';
import { readControlPlaneStatus } from '../control-plane/status.js';
import { SPEC_DEFAULTS, type ControlPlaneSpec } from '../control-plane/spec.js';
import { applyObjects } from '../kube/apply.js';
import { KubernetesApiError, type KubernetesApi } from '../kube/api.js';
import { runListWatch } from '../kube/list-watch.js';
import { probeReadyz } from '../kube/readyz.js';
import {
  HCP_API_VERSION,
  HCP_FINALIZER,
  HCP_KIND,
  HCP_GROUP,
  HCP_PLURAL,
  HCP_VERSION,
  OPERATOR_FIELD_MANAGER,
  type HostedControlPlane,
  type HostedControlPlaneStatus,
} from './api.js';
import { statusOf, type Observation } from './conditions.js';
import { renderKubeconfigSecret } from './manifests.js';
import { WorkQueue } from './work-queue.js';
import { controlPlaneSpecOfResource } from './resource-spec.js';

export interface ControllerDeps {
  /** The infra cluster for the reconcile core (client-node). */
  readonly infra: KubeConfig;
  /** The same cluster for the resources, their status and Events. */
  readonly api: KubernetesApi;
  /** Watch one namespace, or every namespace when undefined. */
  readonly namespace: string | undefined;
  readonly log: Logger;
  readonly now: () => Date;
  readonly signal: AbortSignal;
  /** Re-reconcile an Available control plane this often, healing drift (default 60 s). */
  readonly resyncMs?: number;
  /** Look again at a control plane that is not Available yet this often (default 5 s). */
  readonly pendingMs?: number;
  /** How many control planes are reconciled at once (default 4; one at a time each). */
  readonly concurrency?: number;
}

const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 300_000;

/** Runs the controller until `signal` aborts. */
export async function runController(deps: ControllerDeps): Promise<void> {
  const { api, log, signal } = deps;
  const queue = new WorkQueue();
  const known = new Set<string>();
  const failures = new Map<string, number>();
  const lastEvent = new Map<string, string>();
  /** What the last apply of each control plane made, so the passes in between only look. */
  const applied = new Map<
    string,
    {
      generation: number;
      at: number;
      spec: ControlPlaneSpec;
      apiUrl: string;
      adminKubeconfig: string;
      addons: { count: number; serverVersion: string } | undefined;
    }
  >();
  /** Control planes one of whose workloads was edited or deleted since their last apply. */
  const drifted = new Set<string>();
  const base = `/apis/${HCP_GROUP}/${HCP_VERSION}`;
  const scope = deps.namespace === undefined ? '' : `/namespaces/${deps.namespace}`;
  const keyOf = (o: { metadata: { namespace?: string; name?: string } }) =>
    `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

  const resources = runListWatch<HostedControlPlane>(
    {
      list: async () => {
        const list = await api.request<{
          items: HostedControlPlane[];
          metadata: { resourceVersion: string };
        }>('GET', `${base}${scope}/${HCP_PLURAL}`);
        return { items: list.items, resourceVersion: list.metadata.resourceVersion };
      },
      watch: (rv, s) =>
        api.watch<HostedControlPlane>(`${base}${scope}/${HCP_PLURAL}?resourceVersion=${rv}`, s, 300),
    },
    {
      listed: (items) => {
        known.clear();
        for (const item of items) {
          known.add(keyOf(item));
          queue.add(keyOf(item));
        }
      },
      event: (type, item) => {
        if (type === 'DELETED') {
          known.delete(keyOf(item));
          return;
        }
        known.add(keyOf(item));
        // Our own status writes come back as MODIFIED: only a new generation, a deletion or a
        // resource not yet observed needs a reconcile now (the queue's timer covers the rest).
        const settled =
          item.status?.observedGeneration === item.metadata.generation &&
          item.metadata.deletionTimestamp === undefined &&
          (item.metadata.finalizers ?? []).includes(HCP_FINALIZER);
        if (type === 'ADDED' || !settled) queue.add(keyOf(item));
      },
    },
    { signal, log, what: { watching: HCP_PLURAL } },
  );

  // A change to a workload of a control plane reconciles it: a new generation (someone edited its
  // spec) or its deletion is drift and makes the next reconcile apply; a status change (a pod
  // turned Ready) only makes it look.
  type Workload = {
    metadata: {
      namespace?: string;
      name?: string;
      generation?: number;
      resourceVersion?: string;
      labels?: Record<string, string>;
    };
  };
  const workloadGenerations = new Map<string, number | undefined>();
  const ownerKey = (o: Workload) =>
    `${o.metadata.namespace ?? ''}/${o.metadata.labels?.[CONTROL_PLANE_LABEL] ?? ''}`;
  const workloads = (['deployments', 'statefulsets'] as const).map((plural) => {
    const path = `/apis/apps/v1${scope}/${plural}?labelSelector=${encodeURIComponent(CONTROL_PLANE_LABEL)}`;
    return runListWatch<Workload>(
      {
        list: async () => {
          const list = await api.request<{ items: Workload[]; metadata: { resourceVersion: string } }>(
            'GET',
            path,
          );
          return { items: list.items, resourceVersion: list.metadata.resourceVersion };
        },
        watch: (rv, s) => api.watch<Workload>(`${path}&resourceVersion=${rv}`, s, 300),
      },
      {
        listed: (items) => {
          for (const item of items) {
            workloadGenerations.set(`${plural}/${keyOf(item)}`, item.metadata.generation);
          }
        },
        event: (type, item) => {
          const key = ownerKey(item);
          const id = `${plural}/${keyOf(item)}`;
          const seen = workloadGenerations.get(id);
          if (type === 'DELETED') {
            workloadGenerations.delete(id);
            drifted.add(key);
          } else {
            workloadGenerations.set(id, item.metadata.generation);
            if (seen !== undefined && seen !== item.metadata.generation) drifted.add(key);
          }
          if (known.has(key)) queue.add(key, 500);
        },
      },
      { signal, log, what: { watching: plural } },
    );
  });

  const event = async (
    resource: HostedControlPlane,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ) => {
    const key = keyOf(resource);
    if (lastEvent.get(key) === `${reason}\n${message}`) return;
    lastEvent.set(key, `${reason}\n${message}`);
    const at = deps.now().toISOString();
    await api
      .request('POST', `/api/v1/namespaces/${resource.metadata.namespace}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${resource.metadata.name}.`, namespace: resource.metadata.namespace },
        involvedObject: {
          apiVersion: HCP_API_VERSION,
          kind: HCP_KIND,
          name: resource.metadata.name,
          namespace: resource.metadata.namespace,
          uid: resource.metadata.uid,
          resourceVersion: resource.metadata.resourceVersion,
        },
        reason,
        message: message.slice(0, 1024),
        type,
        source: { component: OPERATOR_FIELD_MANAGER },
        reportingComponent: OPERATOR_FIELD_MANAGER,
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
      })
      .catch((error: unknown) => {
        log.warn({ key, reason, err: describeError(error) }, 'could not record an Event');
      });
  };

  const resourcePath = (namespace: string, name: string) =>
    `${base}/namespaces/${namespace}/${HCP_PLURAL}/${name}`;

  const writeStatus = async (resource: HostedControlPlane, status: HostedControlPlaneStatus) => {
    if (JSON.stringify(resource.status ?? {}) === JSON.stringify(status)) return;
    await api.request('PUT', `${resourcePath(resource.metadata.namespace, resource.metadata.name)}/status`, {
      ...resource,
      status,
    });
  };

  /** ensureControlPlane for a resource's spec, plus Cluster API's kubeconfig Secret. */
  const apply = async (resource: HostedControlPlane, spec: ControlPlaneSpec) => {
    const { namespace, name } = resource.metadata;
    drifted.delete(keyOf(resource));
    const at = Date.now();
    const generated: string[] = [];
    const ensured = await ensureControlPlane(
      spec,
      {
        infra: deps.infra,
        now: deps.now,
        fieldManager: OPERATOR_FIELD_MANAGER,
        onEvent: (e) => {
          if (e.type === 'PkiCompleted') generated.push(...e.generated);
        },
      },
      { readyTimeoutMs: 0 },
    );
    if (generated.length > 0) {
      await event(
        resource,
        'Normal',
        'PkiGenerated',
        `generated ${generated.length} keys and certificates: ${generated.join(', ')}`,
      );
    }
    // Cluster API's kubeconfig Secret: the admin credential, labelled so delete removes it.
    await applyObjects(
      deps.infra,
      [renderKubeconfigSecret(namespace, name, ensured.adminKubeconfig)],
      undefined,
      OPERATOR_FIELD_MANAGER,
    );

    return {
      generation: resource.metadata.generation ?? 0,
      at,
      spec: ensured.spec,
      apiUrl: ensured.apiUrl,
      adminKubeconfig: ensured.adminKubeconfig,
      addons: undefined,
    };
  };

  /** One reconcile; resolves with when to look again (undefined: only on a change). */
  const reconcile = async (key: string): Promise<number | undefined> => {
    const [namespace = '', name = ''] = key.split('/');
    let resource: HostedControlPlane;
    try {
      resource = await api.request<HostedControlPlane>('GET', resourcePath(namespace, name));
    } catch (error) {
      if (error instanceof KubernetesApiError && error.apiStatus === 404) return undefined;
      throw error;
    }
    const finalizers = resource.metadata.finalizers ?? [];

    if (resource.metadata.deletionTimestamp !== undefined) {
      applied.delete(key);
      if (!finalizers.includes(HCP_FINALIZER)) return undefined;
      await writeStatus(resource, statusOf(resource, { kind: 'deleting' }, deps.now())).catch(
        () => undefined,
      );
      const keepData = resource.spec.deletionPolicy === 'Retain';
      const deleted = await deleteControlPlane(deps.infra, namespace, name, { keepData }).catch(
        (error: unknown) => {
          if (isK8sOnK8sError(error) && error.code === 'NOT_FOUND') return [];
          throw error;
        },
      );
      await event(
        resource,
        'Normal',
        'Deleted',
        `deleted ${deleted.length} objects${keepData ? '; kept the PKI Secrets and etcd data (deletionPolicy Retain)' : ''}`,
      );
      const latest = await api.request<HostedControlPlane>('GET', resourcePath(namespace, name));
      await api.request('PUT', resourcePath(namespace, name), {
        ...latest,
        metadata: {
          ...latest.metadata,
          finalizers: (latest.metadata.finalizers ?? []).filter((f) => f !== HCP_FINALIZER),
        },
      });
      log.info({ key, deleted: deleted.length, keepData }, 'deleted');
      return undefined;
    }

    if (!finalizers.includes(HCP_FINALIZER)) {
      // Before anything is made for it, so nothing is left behind when it is deleted.
      await api.request('PUT', resourcePath(namespace, name), {
        ...resource,
        metadata: { ...resource.metadata, finalizers: [...finalizers, HCP_FINALIZER] },
      });
      return 0;
    }

    let spec;
    try {
      spec = controlPlaneSpecOfResource(resource);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      await writeStatus(
        resource,
        statusOf(resource, { kind: 'invalid', message: error.message }, deps.now()),
      );
      await event(resource, 'Warning', 'InvalidSpec', error.message);
      return undefined;
    }

    // Apply when the spec changed, a workload drifted, or at the resync; in between (the 5 s looks
    // while pods come up) only observe: twenty control planes starting at once must not mean
    // seven hundred applies a minute.
    const generation = resource.metadata.generation ?? 0;
    const last = applied.get(key);
    const mustApply =
      last === undefined ||
      last.generation !== generation ||
      drifted.has(key) ||
      Date.now() - last.at >= (deps.resyncMs ?? 60_000);
    const state = mustApply ? await apply(resource, spec) : last;
    applied.set(key, state);
    const ensured = state;
    const status = await readControlPlaneStatus(deps.infra, namespace, name, deps.now());
    const pki = await readExistingPki(deps.infra, ensured.spec);
    const readyz =
      pki.ca === undefined || pki.admin === undefined
        ? { ok: false, detail: 'no CA or admin certificate' }
        : await probeReadyz({
            url: ensured.apiUrl,
            caPem: pki.ca.certPem,
            clientCertPem: pki.admin.certPem,
            clientKeyPem: pki.admin.keyPem,
          });
    // The hosted assets with each apply, and the first time the apiserver answers after one.
    const addons = !readyz.ok
      ? undefined
      : mustApply || state.addons === undefined
        ? await installHostedAssets(ensured.spec, ensured.adminKubeconfig, OPERATOR_FIELD_MANAGER)
        : state.addons;
    state.addons = addons;
    const allReady = status.components.every((c) => c.present && c.readyReplicas >= c.replicas);
    const observation: Observation = {
      kind: 'observed',
      status,
      readyz,
      podProblems: allReady
        ? undefined
        : await describePodProblems(deps.infra, ensured.spec).catch(() => undefined),
      addons: addons === undefined ? undefined : { count: addons.count },
      serverVersion: addons?.serverVersion,
      desiredVersion: resource.spec.version ?? SPEC_DEFAULTS.version,
    };
    const next = statusOf(resource, observation, deps.now());
    await writeStatus(resource, next);
    if (next.phase !== resource.status?.phase) {
      await event(
        resource,
        next.phase === 'NotReady' ? 'Warning' : 'Normal',
        next.phase ?? 'Unknown',
        next.conditions?.find((c) => c.type === 'Available')?.message ?? '',
      );
    }
    // Cluster API reads the endpoint from spec; fill it in once the NodePort is known.
    if (resource.spec.controlPlaneEndpoint?.host === undefined) {
      const url = new URL(ensured.apiUrl);
      const latest = await api.request<HostedControlPlane>('GET', resourcePath(namespace, name));
      await api.request('PUT', resourcePath(namespace, name), {
        ...latest,
        spec: { ...latest.spec, controlPlaneEndpoint: { host: url.hostname, port: Number(url.port || 443) } },
      });
    }
    return next.ready === true ? (deps.resyncMs ?? 60_000) : (deps.pendingMs ?? 5_000);
  };

  const work = async (): Promise<void> => {
    for (;;) {
      const key = await queue.next(signal);
      if (key === undefined) return;
      const started = Date.now();
      try {
        const again = await reconcile(key);
        failures.delete(key);
        if (again !== undefined) queue.add(key, again);
        log.debug({ key, ms: Date.now() - started, againInMs: again }, 'reconciled');
      } catch (error) {
        if (signal.aborted) return;
        const count = (failures.get(key) ?? 0) + 1;
        failures.set(key, count);
        const conflict = error instanceof KubernetesApiError && error.apiStatus === 409;
        const backoffMs = conflict ? 0 : Math.min(FIRST_BACKOFF_MS * 2 ** (count - 1), MAX_BACKOFF_MS);
        queue.add(key, backoffMs);
        if (conflict) continue;
        const message = describeError(error);
        log.warn({ key, err: message, attempt: count, retryInMs: backoffMs }, 'reconcile failed');
        const [namespace = '', name = ''] = key.split('/');
        const resource = await api
          .request<HostedControlPlane>('GET', resourcePath(namespace, name))
          .catch(() => undefined);
        if (resource !== undefined && resource.metadata.deletionTimestamp === undefined) {
          await writeStatus(resource, statusOf(resource, { kind: 'failed', message }, deps.now())).catch(
            () => undefined,
          );
          await event(resource, 'Warning', 'ReconcileFailed', message);
        }
      } finally {
        queue.done(key);
      }
    }
  };
  // Several control planes at once: a reconcile mostly waits on the apiservers, and one that
  // generates a PKI or waits for a slow apiserver must not hold up the others.
  const workers = Array.from({ length: deps.concurrency ?? 4 }, () => work());

  await Promise.all([resources, ...workloads, ...workers]);
}
