import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { describeError } from '@k8s-on-k8s/shared';
import type { WatchEvent } from './api.js';

// The informer loop of client-go, small: list, then watch from the list's resourceVersion, from
// each event's on; list again when the apiserver says the version is too old (an ERROR event, 410
// Gone) and, after a failure, with exponential backoff up to 30 s, until the signal aborts.

/** A collection to list and watch. */
export interface ListWatchSource<T> {
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  watch(resourceVersion: string, signal: AbortSignal): AsyncGenerator<WatchEvent<T>>;
}

/** What to do with what the loop sees: each full list, then each watch event. */
export interface ListWatchHandlers<T> {
  listed(items: readonly T[]): Promise<void> | void;
  event(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): Promise<void> | void;
}

const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

/** Runs the loop until `signal` aborts; `log` says what failed (with `what`) before each retry. */
export async function runListWatch<T extends { metadata: { resourceVersion?: string } }>(
  source: ListWatchSource<T>,
  handlers: ListWatchHandlers<T>,
  options: { readonly signal: AbortSignal; readonly log: Logger; readonly what: Record<string, unknown> },
): Promise<void> {
  const { signal, log } = options;
  // A function, not the property: the compiler would take one check of it as true for the loop.
  const stopped = (): boolean => signal.aborted;

  const listAndWatch = async (): Promise<void> => {
    const list = await source.list();
    await handlers.listed(list.items);
    let resourceVersion = list.resourceVersion;
    while (!stopped()) {
      for await (const event of source.watch(resourceVersion, signal)) {
        // 410 Gone (resourceVersion too old) or another failure: list again.
        if (event.type === 'ERROR') return;
        resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
        if (event.type !== 'BOOKMARK') await handlers.event(event.type, event.object);
      }
    }
  };

  let backoffMs = FIRST_BACKOFF_MS;
  while (!stopped()) {
    try {
      await listAndWatch();
      backoffMs = FIRST_BACKOFF_MS;
    } catch (error) {
      if (stopped()) return;
      log.warn(
        { ...options.what, err: describeError(error), retryInMs: backoffMs },
        'list-watch failed; retrying',
      );
      await sleep(backoffMs, undefined, { signal }).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
  }
}
