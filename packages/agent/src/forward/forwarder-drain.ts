// SIGTERM/SIGINT: stop accepting, give open connections until the drain deadline, cut the rest,
// then close the metrics endpoint. systemd's TimeoutStopSec= must exceed --drain-timeout.
import type { Server } from 'node:http';
import { formatDuration } from '@k8s-on-k8s/shared';
import type { Forwarder } from './forwarder.js';

/** What draining reports to and through. */
export interface DrainDeps {
  readonly stdout: (line: string) => void;
  /** Called once accepting has stopped, before waiting (systemd STATUS=draining). */
  readonly onDraining: () => void;
}

/** Drains the forwarder after `signal` and reports whether every connection finished in time. */
export async function drainForwarder(
  signal: NodeJS.Signals,
  forwarder: Forwarder,
  metricsServer: Server | undefined,
  drainTimeoutMs: number,
  deps: DrainDeps,
): Promise<void> {
  deps.stdout(
    `${signal}: stopped accepting, draining ${forwarder.stats().activeConnections} connections for up to ${formatDuration(drainTimeoutMs)}`,
  );
  deps.onDraining();
  await forwarder.close(drainTimeoutMs);
  const left = forwarder.stats().activeConnections;
  if (metricsServer !== undefined) await closeNow(metricsServer);
  deps.stdout(left === 0 ? 'drained, exiting' : `drain deadline reached, cut ${left} connections, exiting`);
}

// A scraper's keep-alive connection would otherwise hold close() open.
async function closeNow(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}
