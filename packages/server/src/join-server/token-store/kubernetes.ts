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

/** The name of the Secret that stores join token `id`. */
export function joinTokenSecretName(id: string): string {
  return `k8s-join-token-${id}`;
}

/** Renders the Secret that stores a record; `resourceVersion` makes a replace a CAS. */
export function renderJoinTokenSecret(record: JoinTokenRecord, resourceVersion?: string): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: joinTokenSecretName(record.id),
      namespace: NAMESPACE,
      labels: { [JOIN_TOKEN_LABEL]: record.id },
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
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
          renderJoinTokenSecret(revoked, secret.metadata.resourceVersion),
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
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      // After a conflict the read must start after the conflict; a shared read might predate it.
      const secret =
        attempt === 0 ? await this.read(id) : await this.api.getSecret(NAMESPACE, joinTokenSecretName(id));
      if (secret === undefined) {
        for (const waiter of batch) waiter.resolve({ ok: false, reason: 'not-found' });
        return;
      }
      const original = readRecord(secret);
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
      if (record !== original) {
        try {
          await this.api.replaceSecret(
            NAMESPACE,
            renderJoinTokenSecret(record, secret.metadata.resourceVersion),
          );
        } catch (error) {
          if (error instanceof KubernetesApiError && error.apiStatus === 409) continue;
          throw error;
        }
      }
      this.remember(id, record);
      for (const waiter of granted) waiter.resolve({ ok: true, record });
      for (const { waiter, result } of refused) waiter.resolve(result);
      return;
    }
    throw this.tooContended(id);
  }

  private tooContended(id: string): K8sOnK8sError {
    // STORE_ERROR (503), not CONFLICT (409): the caller did nothing wrong and should retry.
    return new K8sOnK8sError(
      'STORE_ERROR',
      `join token ${id} is being changed by too many writers at once; try again`,
    );
  }
}
