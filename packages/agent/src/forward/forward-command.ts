// `k8s-join forward`: flags → validated ForwarderOptions → a running forwarder, with systemd
// readiness, SIGHUP reload, SIGTERM drain and a metrics endpoint. The process itself (signals,
// files, systemd-notify) comes in through deps so tests can drive it in-process too.
import type { Server } from 'node:http';
import { formatHostPort, type HostPort } from '@k8s-on-k8s/shared';
import { warnAboutFileLimit } from './file-limit.js';
import { FORWARD_HELP, parseForwardFlags, type ForwardCommandConfig } from './forward-flags.js';
import { createForwarder, type Forwarder } from './forwarder.js';
import { drainForwarder } from './forwarder-drain.js';
import { serveForwarderMetrics } from './forwarder-metrics.js';
import { listenError } from './listen-error.js';
import type { ForwardCommandDeps } from './forward-command-deps.js';
import { createStatusReporter, createSystemdNotifier } from './systemd-status.js';
import { reloadUpstreamsOnHangup } from './upstreams-reload.js';

/** Runs `k8s-join forward` until SIGTERM/SIGINT has drained it; resolves with the exit code. */
export async function runForwardCommand(argv: readonly string[], deps: ForwardCommandDeps): Promise<number> {
  const config = await parseForwardFlags(argv, deps.readFile);
  if (config === 'help') {
    deps.stdout(FORWARD_HELP);
    return 0;
  }
  // Subscribed before listening: a SIGTERM during start-up must drain and exit 0, not kill us.
  const unsubscribers: (() => void)[] = [];
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      unsubscribers.push(
        deps.onSignal(signal, () => {
          resolve(signal);
        }),
      );
    }
  });
  try {
    return await serveUntilStopped(config, deps, stopSignal, unsubscribers);
  } finally {
    for (const unsubscribe of unsubscribers) unsubscribe();
  }
}

async function serveUntilStopped(
  config: ForwardCommandConfig,
  deps: ForwardCommandDeps,
  stopSignal: Promise<NodeJS.Signals>,
  unsubscribers: (() => void)[],
): Promise<number> {
  const forwarder = createForwarder({
    ...config.forwarder,
    onHealthChange: (upstream) => {
      deps.stdout(
        `upstream ${upstream.upstream} is ${upstream.healthy ? 'healthy, back in rotation' : 'unhealthy, out of rotation'}`,
      );
      status.update();
    },
  });
  const status = createStatusReporter(createSystemdNotifier(deps), () => forwarder.stats());

  const metricsServer = await startListening(config, forwarder, deps);
  await warnAboutFileLimit(config.forwarder.maxConnections, deps);
  status.ready();
  if (config.upstreamsFile !== undefined) {
    unsubscribers.push(reloadUpstreamsOnHangup(config.upstreamsFile, forwarder, deps, status.update));
  }

  const signal = await stopSignal;
  await drainForwarder(signal, forwarder, metricsServer, config.drainTimeoutMs, {
    stdout: deps.stdout,
    onDraining: status.draining,
  });
  return 0;
}

/** Binds the forwarder and, with --metrics, the metrics endpoint; resolves with the latter. */
async function startListening(
  config: ForwardCommandConfig,
  forwarder: Forwarder,
  deps: ForwardCommandDeps,
): Promise<Server | undefined> {
  const bound = await forwarder.listen().catch((error: unknown) => {
    throw listenError(config.forwarder.listen, '--listen', error);
  });
  const metricsServer =
    config.metrics === undefined ? undefined : await serveMetrics(config.metrics, forwarder, deps);
  const upstreamList = config.forwarder.upstreams.map(formatHostPort).join(', ');
  deps.stdout(
    `listening on ${formatHostPort({ host: bound.address, port: bound.port })}, forwarding to ${upstreamList}`,
  );
  return metricsServer;
}

async function serveMetrics(
  address: HostPort,
  forwarder: Forwarder,
  deps: ForwardCommandDeps,
): Promise<Server> {
  const served = await serveForwarderMetrics(address, () => forwarder.stats()).catch(
    async (error: unknown) => {
      // Release the bound listener and the health-check timer, so the process can exit with this error.
      await forwarder.close(0);
      throw listenError(address, '--metrics', error);
    },
  );
  deps.stdout(
    `metrics on http://${formatHostPort({ host: served.address.address, port: served.address.port })}/metrics`,
  );
  return served.server;
}
