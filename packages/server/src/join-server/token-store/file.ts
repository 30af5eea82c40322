import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { K8sOnK8sError, replaceFileAtomic } from '@k8s-on-k8s/shared';
import {
  isJoinTokenPrunable,
  parseJoinTokenRecord,
  spendJoinToken,
  type ConsumeResult,
  type JoinTokenRecord,
  type JoinTokenStore,
} from './store.js';

// The embedded store: one JSON file holding every token, rewritten whole on each change via a
// temp file + fsync + rename + directory fsync, so a crash at any instant (kill -9, power loss)
// leaves either the old file or the new one, never a torn one. Mode 0600: the hashes are not
// secrets, but a store is nobody else's business.
//
// Changes are group-committed: while one write is in flight, further changes queue, and the next
// write carries all of them. Each change is applied in order to a copy of the committed state, so
// consumes are serialized exactly as if they ran one at a time, and a caller hears "done" only
// once its change is on disk. One process owns a file; two servers must not share one.

const FILE_API_VERSION = 'k8s-on-k8s.io/v1';
const FILE_KIND = 'JoinTokenList';
/** Expired tokens are kept this long, so a late join is audited as "expired", not "unknown". */
const DEFAULT_RETENTION_MS = 24 * 3_600_000;

/** Where the store lives and how it tells time. */
export interface FileTokenStoreOptions {
  readonly path: string;
  readonly now: () => Date;
  readonly retentionMs?: number;
}

type Records = Map<string, JoinTokenRecord>;

interface Change {
  /** Applies the change to `draft`; returns whether it changed anything, and the answer. */
  readonly apply: (draft: Records) => { changed: boolean; value: unknown };
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Reads the store's file; a missing file is an empty store. */
export async function readTokenFile(path: string): Promise<JoinTokenRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new K8sOnK8sError('STORE_ERROR', `cannot read the token store ${path}`, { cause: error });
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (cause) {
    throw new K8sOnK8sError('STORE_ERROR', `the token store ${path} is not valid JSON`, { cause });
  }
  const tokens = (document as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(tokens)) {
    throw new K8sOnK8sError('STORE_ERROR', `the token store ${path} has no "tokens" list`);
  }
  return tokens.map((token, index) => parseJoinTokenRecord(token, `${path}: tokens[${index}]`));
}

/** A JoinTokenStore in one local JSON file. */
export class FileTokenStore implements JoinTokenStore {
  private records: Records;
  private readonly queue: Change[] = [];
  private writing: Promise<void> | undefined;

  private constructor(
    private readonly options: FileTokenStoreOptions,
    records: readonly JoinTokenRecord[],
  ) {
    this.records = new Map(records.map((record) => [record.id, record]));
  }

  /** Opens (or starts) the store at `options.path`, removing temp files a crash left behind. */
  static async open(options: FileTokenStoreOptions): Promise<FileTokenStore> {
    await mkdir(dirname(options.path), { recursive: true, mode: 0o700 });
    const prefix = `.${basename(options.path)}.`;
    for (const name of await readdir(dirname(options.path))) {
      if (name.startsWith(prefix) && name.endsWith('.tmp')) {
        await unlink(join(dirname(options.path), name)).catch(() => undefined);
      }
    }
    return new FileTokenStore(options, await readTokenFile(options.path));
  }

  create(record: JoinTokenRecord): Promise<void> {
    return this.change((draft) => {
      if (draft.has(record.id)) {
        throw new K8sOnK8sError('CONFLICT', `join token ${record.id} already exists`);
      }
      draft.set(record.id, record);
      return { changed: true, value: undefined };
    });
  }

  get(id: string): Promise<JoinTokenRecord | undefined> {
    return Promise.resolve(this.records.get(id));
  }

  list(): Promise<readonly JoinTokenRecord[]> {
    return Promise.resolve([...this.records.values()]);
  }

  revoke(id: string): Promise<JoinTokenRecord | undefined> {
    return this.change((draft) => {
      const record = draft.get(id);
      if (record === undefined) return { changed: false, value: undefined };
      if (record.revoked) return { changed: false, value: record };
      const revoked = { ...record, revoked: true };
      draft.set(id, revoked);
      return { changed: true, value: revoked };
    });
  }

  consume(id: string, now: Date): Promise<ConsumeResult> {
    return this.change((draft): { changed: boolean; value: ConsumeResult } => {
      const record = draft.get(id);
      if (record === undefined) return { changed: false, value: { ok: false, reason: 'not-found' } };
      const spent = spendJoinToken(record, now);
      if ('reason' in spent) return { changed: false, value: { ok: false, reason: spent.reason } };
      draft.set(id, spent.record);
      return { changed: spent.record !== record, value: { ok: true, record: spent.record } };
    });
  }

  async ping(): Promise<void> {
    // The file is ours; being able to read its directory is what a write needs first.
    await readdir(dirname(this.options.path));
  }

  async close(): Promise<void> {
    await this.writing;
  }

  private change<T>(apply: (draft: Records) => { changed: boolean; value: T }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ apply, resolve: resolve as (value: unknown) => void, reject });
      this.kick();
    });
  }

  // Starts a drain unless one runs. A change queued after the drain's loop saw an empty queue but
  // before its promise settled would otherwise wait for a drain that never comes.
  private kick(): void {
    if (this.writing !== undefined) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const draft = new Map(this.records);
      const done: { change: Change; value: unknown }[] = [];
      let changed = false;
      for (const change of batch) {
        try {
          const result = change.apply(draft);
          changed ||= result.changed;
          done.push({ change, value: result.value });
        } catch (error) {
          change.reject(error);
        }
      }
      if (changed) {
        const now = this.options.now();
        const retention = this.options.retentionMs ?? DEFAULT_RETENTION_MS;
        for (const [id, record] of draft) {
          if (isJoinTokenPrunable(record, now, retention)) draft.delete(id);
        }
        try {
          await this.write([...draft.values()]);
        } catch (cause) {
          const error = new K8sOnK8sError(
            'STORE_ERROR',
            `cannot write the token store ${this.options.path}`,
            { cause },
          );
          for (const { change } of done) change.reject(error);
          continue;
        }
      }
      this.records = draft;
      for (const { change, value } of done) change.resolve(value);
    }
  }

  private async write(records: readonly JoinTokenRecord[]): Promise<void> {
    const text = `${JSON.stringify({ apiVersion: FILE_API_VERSION, kind: FILE_KIND, tokens: records }, null, 2)}\n`;
    await replaceFileAtomic(this.options.path, text, 0o600);
  }
}
