// Leader election with a coordination.k8s.io Lease, as client-go's leaderelection does it: take the
// Lease when it is free or its holder let it expire, renew it well inside its duration, each write
// a compare-and-swap on resourceVersion, so two replicas never both believe they lead. A leader that
// cannot renew in time gives up (onLost) before another may take over.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { describeError } from '@k8s-on-k8s/shared';
import { KubernetesApiError, type KubernetesApi } from '../kube/api.js';

export interface LeaseOptions {
  readonly namespace: string;
  readonly name: string;
  /** This replica (its pod name): the Lease's holderIdentity. */
  readonly identity: string;
  /** How long a Lease holds without renewal (default 15 s). */
  readonly leaseDurationMs?: number;
  /** How often the leader renews (default 5 s) and others retry (the same). */
  readonly retryMs?: number;
  readonly log: Logger;
  readonly now?: () => Date;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** A leadership once held: resolves `lost` when it ends; `release` gives it up (on shutdown). */
export interface Leadership {
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

const MICRO_TIME = (date: Date): string => date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** Waits until this replica holds the Lease (or `signal` aborts: then rejects), and keeps renewing it. */
export async function acquireLeadership(
  api: KubernetesApi,
  options: LeaseOptions,
  signal: AbortSignal,
): Promise<Leadership> {
  const now = options.now ?? (() => new Date());
  const durationMs = options.leaseDurationMs ?? 15_000;
  const retryMs = options.retryMs ?? 5_000;
  const path = `/apis/coordination.k8s.io/v1/namespaces/${options.namespace}/leases`;
  const { log } = options;
  let waitingSaid = false;
  /** Set by the last attempt that found the Lease held, unexpired, by another replica. */
  let heldByAnother = false;

  /** One attempt to take or renew; true when this replica holds the Lease afterwards. */
  const tryAcquire = async (): Promise<boolean> => {
    heldByAnother = false;
    const at = now();
    let current: Lease | undefined;
    try {
      current = await api.request<Lease>('GET', `${path}/${options.name}`);
    } catch (error) {
      if (!(error instanceof KubernetesApiError && error.apiStatus === 404)) throw error;
    }
    if (current === undefined) {
      await api.request('POST', path, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: options.name, namespace: options.namespace },
        spec: {
          holderIdentity: options.identity,
          leaseDurationSeconds: Math.ceil(durationMs / 1000),
          acquireTime: MICRO_TIME(at),
          renewTime: MICRO_TIME(at),
          leaseTransitions: 0,
        },
      } satisfies Lease);
      return true;
    }
    const holder = current.spec.holderIdentity;
    const renewed = Date.parse(current.spec.renewTime ?? '');
    const heldFor = (current.spec.leaseDurationSeconds ?? 0) * 1000;
    const expired = Number.isNaN(renewed) || renewed + heldFor < at.getTime();
    if (holder !== undefined && holder !== '' && holder !== options.identity && !expired) {
      if (!waitingSaid)
        log.info({ lease: options.name, holder }, 'another replica leads; waiting for its Lease');
      waitingSaid = true;
      heldByAnother = true;
      return false;
    }
    const ours = holder === options.identity;
    // PUT with the resourceVersion read: a 409 means someone else wrote it first.
    await api.request('PUT', `${path}/${options.name}`, {
      ...current,
      spec: {
        ...current.spec,
        holderIdentity: options.identity,
        leaseDurationSeconds: Math.ceil(durationMs / 1000),
        renewTime: MICRO_TIME(at),
        ...(ours
          ? {}
          : { acquireTime: MICRO_TIME(at), leaseTransitions: (current.spec.leaseTransitions ?? 0) + 1 }),
      },
    });
    return true;
  };

  const attempt = async (): Promise<boolean> => {
    try {
      return await tryAcquire();
    } catch (error) {
      if (!(error instanceof KubernetesApiError && error.apiStatus === 409)) {
        log.warn(
          { lease: options.name, err: describeError(error) },
          'leader election: cannot read or write the Lease',
        );
      }
      return false;
    }
  };

  while (!(await attempt())) {
    await sleep(retryMs, undefined, { signal });
  }
  log.info({ lease: options.name, identity: options.identity }, 'leading');

  const renewing = new AbortController();
  // A function, not the variable: the compiler would take one check of it for the whole loop.
  const released = (): boolean => renewing.signal.aborted;
  const anotherHolds = (): boolean => heldByAnother;
  const lost = (async () => {
    let lastRenew = Date.now();
    while (!released()) {
      await sleep(retryMs, undefined, { signal: renewing.signal }).catch(() => undefined);
      if (released()) return;
      if (await attempt()) {
        lastRenew = Date.now();
        continue;
      }
      if (anotherHolds()) {
        log.error({ lease: options.name }, 'leadership lost: another replica holds the Lease');
        return;
      }
      // Give up before the Lease can have expired for the others: they may take it after that.
      if (Date.now() - lastRenew > durationMs - retryMs) {
        log.error({ lease: options.name }, 'leadership lost: the Lease could not be renewed in time');
        return;
      }
    }
  })();
  return {
    lost,
    async release() {
      renewing.abort();
      await lost;
      // Hand the Lease over at once instead of making the next leader wait out its duration.
      try {
        const current = await api.request<Lease>('GET', `${path}/${options.name}`);
        if (current.spec.holderIdentity === options.identity) {
          await api.request('PUT', `${path}/${options.name}`, {
            ...current,
            spec: { ...current.spec, holderIdentity: '', renewTime: MICRO_TIME(new Date(0)) },
          });
        }
      } catch (error) {
        log.warn({ lease: options.name, err: describeError(error) }, 'could not release the Lease');
      }
    },
  };
}
