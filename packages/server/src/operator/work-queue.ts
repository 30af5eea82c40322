// The controller's work queue: keys due at a time, never one key to two workers at once.

/**
 * Keys (`namespace/name`) due at a time. Workers take the earliest due key that no other worker
 * holds; a key added while held waits until done(), so one control plane is never reconciled twice
 * at once.
 */
export class WorkQueue {
  private readonly due = new Map<string, number>();
  private readonly held = new Set<string>();
  private readonly waiters = new Set<() => void>();

  /** Due in `delayMs` (default now); an earlier due time already queued wins. */
  add(key: string, delayMs = 0): void {
    const at = Date.now() + delayMs;
    const queued = this.due.get(key);
    if (queued === undefined || at < queued) this.due.set(key, at);
    this.wakeAll();
  }

  /** The next due key, held until done(key); undefined once `signal` aborts. */
  async next(signal: AbortSignal): Promise<string | undefined> {
    while (!signal.aborted) {
      let first: [string, number] | undefined;
      for (const entry of this.due) {
        if (!this.held.has(entry[0]) && (first === undefined || entry[1] < first[1])) first = entry;
      }
      const waitMs = first === undefined ? 60_000 : first[1] - Date.now();
      if (first !== undefined && waitMs <= 0) {
        this.due.delete(first[0]);
        this.held.add(first[0]);
        return first[0];
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(waitMs, 60_000));
        this.waiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    return undefined;
  }

  done(key: string): void {
    this.held.delete(key);
    this.wakeAll();
  }

  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
