import { randomBytes } from 'node:crypto';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { KubernetesApiError, type KubernetesApi, type SecretObject } from '../../kube/api.js';
import {
  isJoinTokenPrunable,
  parseJoinTokenRecord,
  spendJoinToken,
  type ConsumeResult,
  type JoinTokenRecord,
  type JoinTokenStore,
} from './store.js';
import { JOIN_TOKEN_LABEL, JOIN_TOKEN_NAMESPACE, JOIN_TOKEN_SECRET_TYPE } from '../../contract.js';

// Join tokens as Secrets in the hosted cluster's namespace k8s-on-k8s-join (JOIN_TOKEN_NAMESPACE),
// one per token, so every join-server replica sees the same state. Not kube-system: the join server
// may read and write Secrets only there, and in kube-system only create and delete its bootstrap
// tokens (control-plane/render/join-server-rbac.ts). The record (hash only, never the secret) is one JSON data key.
//
// Spending a use is a read-modify-write guarded by the Secret's resourceVersion: the PUT carries
// the resourceVersion it read, and the apiserver refuses it with 409 if anything changed since
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions). Whoever loses
// re-reads and tries again, so two replicas can never both spend the last use.
//
// Reads for verifying a join (`get`) may be up to a second old: the secret's hash never changes,
// and whether the token is still usable is decided again by `consume` on a fresh read and a CAS
// (a revocation changes the resourceVersion, so a CAS based on older state fails and re-reads).
// Revoke wins over every consume queued after it returns: a consume never shares a read that may
// have begun before (each batch GETs for itself, and a GET without resourceVersion is a quorum
// read), and every grant, unlimited tokens' too, goes through a PUT carrying the resourceVersion
// read. For an unlimited token that PUT changes nothing, so the apiserver writes nothing, but it
// still checks the resourceVersion against etcd and answers 409 if a revoke came in between.
//
// A PUT that fails without an answer (a timeout, a reset, a 5xx) may have applied or not. Each
// spending PUT records a random id in an annotation of recent spends; the next read tells
// whether the PUT applied (grant what it paid for), or not (try again), so a use is neither
// lost while the join is refused nor spent twice. If the store does not answer that read either,
// the consume fails saying the use may have been spent.
//
// Within one replica, consumes of the same token are batched: while one compare-and-swap is in
// flight, later consumers queue, and the next CAS pays for as many of them as there are uses
// left. Fifty agents presenting one token cost a couple of round trips, not fifty conflicts.

const NAMESPACE = JOIN_TOKEN_NAMESPACE;
const RECORD_KEY = 'record.json';
const MAX_CAS_ATTEMPTS = 50;
const DEFAULT_RETENTION_MS = 24 * 3_600_000;
const GET_CACHE_MS = 1000;
const GET_CACHE_MAX = 10_000;
/** Ids of the last spends that changed a record, so a writer whose answer was lost can look. */
const SPENDS_ANNOTATION = 'k8s-on-k8s.io/recent-spends';
const SPENDS_KEPT = 16;

/** The name of the Secret that stores join token `id`. */
export function joinTokenSecretName(id: string): string {
  return `k8s-join-token-${id}`;
}

/**
 * Renders the Secret that stores a record; `resourceVersion` makes a replace a CAS, and
 * `annotations` (the recent spends) are carried over from the Secret read.
 */
export function renderJoinTokenSecret(
  record: JoinTokenRecord,
  resourceVersion?: string,
  annotations?: Readonly<Record<string, string>>,
): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: joinTokenSecretName(record.id),
      namespace: NAMESPACE,
      labels: { [JOIN_TOKEN_LABEL]: record.id },
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
      ...(annotations === undefined || Object.keys(annotations).length === 0 ? {} : { annotations }),
    },
    type: JOIN_TOKEN_SECRET_TYPE,
    data: { [RECORD_KEY]: Buffer.from(JSON.stringify(record)).toString('base64') },
  };
}

function readRecord(secret: SecretObject): JoinTokenRecord {
  const source = `Secret ${NAMESPACE}/${secret.metadata.name}`;
  const data = secret.data?.[RECORD_KEY];
  if (data === undefined) throw new K8sOnK8sError('STORE_ERROR', `${source} has no ${RECORD_KEY}`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
  } catch (cause) {
    throw new K8sOnK8sError('STORE_ERROR', `${source}: ${RECORD_KEY} is not JSON`, { cause });
  }
  return parseJoinTokenRecord(value, source);
}

/** What one read of the record grants a batch: the record after the grants, who got one, who not. */
interface Outcome {
  readonly original: JoinTokenRecord;
  readonly record: JoinTokenRecord;
  readonly granted: readonly Waiter[];
  readonly refused: readonly { waiter: Waiter; result: ConsumeResult }[];
}

function spendFor(original: JoinTokenRecord, batch: readonly Waiter[]): Outcome {
  let record = original;
  const granted: Waiter[] = [];
  const refused: { waiter: Waiter; result: ConsumeResult }[] = [];
  for (const waiter of batch) {
    const spent = spendJoinToken(record, waiter.now);
    if ('reason' in spent) {
      refused.push({ waiter, result: { ok: false, reason: spent.reason } });
    } else {
      record = spent.record;
      granted.push(waiter);
    }
  }
  return { original, record, granted, refused };
}

function recentSpends(secret: SecretObject): string[] {
  const text = secret.metadata.annotations?.[SPENDS_ANNOTATION] ?? '';
  return text === '' ? [] : text.split(',');
}

/** Whether a failed request may still have been applied: no answer, or the apiserver's 5xx. */
function isUnanswered(error: unknown): boolean {
  return !(error instanceof KubernetesApiError) || error.apiStatus >= 500;
}

interface Waiter {
  readonly now: Date;
  readonly resolve: (result: ConsumeResult) => void;
  readonly reject: (error: unknown) => void;
}

/** Options of the kubernetes store. */
export interface KubernetesTokenStoreOptions {
  readonly api: KubernetesApi;
  readonly now: () => Date;
  readonly retentionMs?: number;
}

/** A JoinTokenStore of Secrets in the hosted cluster's namespace k8s-on-k8s-join. */
export class KubernetesTokenStore implements JoinTokenStore {
  private readonly api: KubernetesApi;
  private readonly waiting = new Map<string, Waiter[]>();
  private readonly reads = new Map<string, Promise<SecretObject | undefined>>();
  private readonly recent = new Map<string, { record: JoinTokenRecord; at: number }>();

  constructor(private readonly options: KubernetesTokenStoreOptions) {
    this.api = options.api;
  }

  async create(record: JoinTokenRecord): Promise<void> {
    try {
      await this.api.createSecret(NAMESPACE, renderJoinTokenSecret(record));
    } catch (error) {
      if (error instanceof KubernetesApiError && error.apiStatus === 409) {
        throw new K8sOnK8sError('CONFLICT', `join token ${record.id} already exists`, { cause: error });
      }
      throw error;
    }
  }

  async get(id: string): Promise<JoinTokenRecord | undefined> {
    const now = this.options.now().getTime();
    const cached = this.recent.get(id);
    if (cached !== undefined && now - cached.at >= 0 && now - cached.at < GET_CACHE_MS) return cached.record;
    const secret = await this.read(id);
    if (secret === undefined) {
      // Misses are not remembered: a token just created by another replica must work at once.
      this.recent.delete(id);
      return undefined;
    }
    const record = readRecord(secret);
    this.remember(id, record);
    return record;
  }

  private remember(id: string, record: JoinTokenRecord): void {
    if (this.recent.size >= GET_CACHE_MAX) this.recent.clear();
    this.recent.set(id, { record, at: this.options.now().getTime() });
  }

  async list(): Promise<readonly JoinTokenRecord[]> {
    const secrets = await this.api.listSecrets(NAMESPACE, JOIN_TOKEN_LABEL);
    const now = this.options.now();
    const retention = this.options.retentionMs ?? DEFAULT_RETENTION_MS;
    const records: JoinTokenRecord[] = [];
    for (const secret of secrets) {
      if (secret.type !== JOIN_TOKEN_SECRET_TYPE) continue;
      const record = readRecord(secret);
      if (isJoinTokenPrunable(record, now, retention)) {
        // Housekeeping; if another replica changed it meanwhile, the precondition leaves it be.
        await this.api
          .deleteSecret(NAMESPACE, secret.metadata.name, secret.metadata.resourceVersion)
          .catch(() => false);
        continue;
      }
      records.push(record);
    }
    return records;
  }

  async revoke(id: string): Promise<JoinTokenRecord | undefined> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const secret = await this.api.getSecret(NAMESPACE, joinTokenSecretName(id));
      if (secret === undefined) return undefined;
      const record = readRecord(secret);
      if (record.revoked) return record;
      const revoked = { ...record, revoked: true };
      try {
        await this.api.replaceSecret(
          NAMESPACE,
          renderJoinTokenSecret(revoked, secret.metadata.resourceVersion, secret.metadata.annotations),
        );
        this.remember(id, revoked);
        return revoked;
      } catch (error) {
        if (!(error instanceof KubernetesApiError && error.apiStatus === 409)) throw error;
      }
    }
    throw this.tooContended(id);
  }

  consume(id: string, now: Date): Promise<ConsumeResult> {
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(id);
      if (queue !== undefined) {
        queue.push({ now, resolve, reject });
        return;
      }
      this.waiting.set(id, [{ now, resolve, reject }]);
      void this.drain(id);
    });
  }

  async ping(): Promise<void> {
    await this.api.listSecrets(NAMESPACE, `${JOIN_TOKEN_LABEL}=ping-only-no-such-token`);
  }

  async close(): Promise<void> {
    // The API client is the caller's; nothing of ours stays open between calls.
  }

  // Reads shared by concurrent callers: a GET already in flight answers everyone who asks meanwhile.
  private read(id: string): Promise<SecretObject | undefined> {
    let pending = this.reads.get(id);
    if (pending === undefined) {
      pending = this.api.getSecret(NAMESPACE, joinTokenSecretName(id)).finally(() => {
        this.reads.delete(id);
      });
      this.reads.set(id, pending);
    }
    return pending;
  }

  private async drain(id: string): Promise<void> {
    for (;;) {
      const queue = this.waiting.get(id) ?? [];
      const batch = queue.splice(0);
      if (batch.length === 0) {
        this.waiting.delete(id);
        return;
      }
      try {
        await this.consumeBatch(id, batch);
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    }
  }

  private async consumeBatch(id: string, batch: readonly Waiter[]): Promise<void> {
    // Spends whose PUT got no answer: what each would have granted, by the id it wrote.
    const unanswered = new Map<string, Outcome>();
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      let secret: SecretObject | undefined;
      try {
        // Never a shared read: one that began before a revoke returned would not see it.
        secret = await this.api.getSecret(NAMESPACE, joinTokenSecretName(id));
      } catch (error) {
        if (unanswered.size === 0) throw error;
        throw new K8sOnK8sError(
          'STORE_ERROR',
          `could not learn whether a use of join token ${id} was spent (a write got no answer, and neither did the read after it); it may have been`,
          { cause: error },
        );
      }
      if (secret === undefined) {
        for (const waiter of batch) waiter.resolve({ ok: false, reason: 'not-found' });
        return;
      }
      const spends = recentSpends(secret);
      const applied = [...unanswered].find(([spendId]) => spends.includes(spendId))?.[1];
      if (applied !== undefined) {
        this.settle(id, applied);
        return;
      }
      const outcome = spendFor(readRecord(secret), batch);
      if (outcome.granted.length > 0) {
        const changed = outcome.record !== outcome.original;
        const spendId = changed ? randomBytes(8).toString('hex') : undefined;
        const annotations =
          spendId === undefined
            ? secret.metadata.annotations
            : {
                ...secret.metadata.annotations,
                [SPENDS_ANNOTATION]: [...spends, spendId].slice(-SPENDS_KEPT).join(','),
              };
        try {
          // Unchanged (unlimited token): a compare without a write, still refused if revoked since.
          await this.api.replaceSecret(
            NAMESPACE,
            renderJoinTokenSecret(outcome.record, secret.metadata.resourceVersion, annotations),
          );
        } catch (error) {
          if (error instanceof KubernetesApiError && error.apiStatus === 409) continue;
          if (!isUnanswered(error)) throw error;
          // It may have applied: the next read says. An unchanged record spent nothing either way.
          if (spendId !== undefined) unanswered.set(spendId, outcome);
          continue;
        }
      }
      this.settle(id, outcome);
      return;
    }
    throw this.tooContended(id);
  }

  private settle(id: string, outcome: Outcome): void {
    this.remember(id, outcome.record);
    for (const waiter of outcome.granted) waiter.resolve({ ok: true, record: outcome.record });
    for (const { waiter, result } of outcome.refused) waiter.resolve(result);
  }

  private tooContended(id: string): K8sOnK8sError {
    // STORE_ERROR (503), not CONFLICT (409): the caller did nothing wrong and should retry.
    return new K8sOnK8sError(
      'STORE_ERROR',
      `join token ${id} is being changed by too many writers at once; try again`,
    );
  }
}
