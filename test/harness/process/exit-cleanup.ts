/** Synchronous cleanups still pending; run when the test process exits, however it exits. */
const pending = new Set<() => void>();

function runPending(): void {
  for (const cleanup of [...pending].reverse()) {
    pending.delete(cleanup);
    try {
      cleanup();
    } catch {
      // Best effort: one failed cleanup must not keep the others from running.
    }
  }
}

process.on('exit', runPending);
// 'exit' does not fire on a fatal signal; run the cleanups, then die of the same signal.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    runPending();
    process.kill(process.pid, signal);
  });
}

/**
 * Registers `cleanup` (which must be synchronous: the event loop is gone by then) to run if the
 * process exits before the returned unregister function is called.
 */
export function registerExitCleanup(cleanup: () => void): () => void {
  pending.add(cleanup);
  return () => {
    pending.delete(cleanup);
  };
}
