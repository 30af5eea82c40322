// k8s-on-k8s-operator: flags, leader election, the controller, health endpoints, signals.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { invalidArgument, isDns1123Label } from '@k8s-on-k8s/shared';
import { KubernetesApi } from '../kube/api.js';
import { loadKubeConfig } from '../kube/kubeconfig.js';
import { HCP_KIND, HCP_PLURAL, HCP_GROUP } from './api.js';
import { runController } from './controller.js';
import { acquireLeadership } from './leader-election.js';

export const OPERATOR_HELP = `k8s-on-k8s-operator: reconciles ${HCP_KIND} resources (${HCP_PLURAL}.${HCP_GROUP}) in the
infra cluster into hosted control planes, with the same core as \`k8s-on-k8s create\`, and reports
their state as status conditions and Events.

Usage:
  k8s-on-k8s-operator [flags]

Flags:
  --kubeconfig PATH        the infra cluster (default: the pod's service account)
  --namespace NS           watch only this namespace (default: every namespace)
  --leader-elect=BOOL      hold a Lease so one replica acts at a time (default true)
  --leader-election-namespace NS
                           where the Lease lives (default: $POD_NAMESPACE, else k8s-on-k8s-system)
  --lease-name NAME        the Lease's name (default k8s-on-k8s-operator)
  --id NAME                this replica in the Lease (default: $POD_NAME, else the host name)
  --resync SECONDS         reconcile a Ready control plane again this often, healing drift (default 60)
  --concurrent-reconciles N
                           control planes reconciled at once (default 4)
  --health-port PORT       /healthz and /readyz on this port; 0 picks one (default 8081)
  --log-level LEVEL        trace, debug, info, warn or error (default info)
  -h, --help               show this help

Install the CRD, RBAC and Deployment with: kubectl apply -f deploy/operator/
Then: kubectl apply -f - <<EOF
apiVersion: ${HCP_GROUP}/v1alpha1
kind: ${HCP_KIND}
metadata: { name: dev, namespace: team-a }
spec: { exposure: { host: api.dev.example } }
EOF
kubectl get hcp -n team-a -w`;

export interface OperatorConfig {
  readonly kubeconfig: string | undefined;
  readonly namespace: string | undefined;
  readonly leaderElect: boolean;
  readonly leaseNamespace: string;
  readonly leaseName: string;
  readonly id: string;
  readonly resyncMs: number;
  readonly concurrency: number;
  readonly healthPort: number;
  readonly logLevel: string;
}

/** Validates the flags; 'help' for --help. */
export function parseOperatorFlags(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): OperatorConfig | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        kubeconfig: { type: 'string' },
        namespace: { type: 'string' },
        'leader-elect': { type: 'string' },
        'leader-election-namespace': { type: 'string' },
        'lease-name': { type: 'string' },
        id: { type: 'string' },
        resync: { type: 'string' },
        'concurrent-reconciles': { type: 'string' },
        'health-port': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (cause) {
    throw invalidArgument(`${(cause as Error).message}; see k8s-on-k8s-operator --help`, { cause });
  }
  if (values.help === true) return 'help';
  const leaderElect = values['leader-elect'] ?? 'true';
  if (leaderElect !== 'true' && leaderElect !== 'false') {
    throw invalidArgument(`Expected --leader-elect to be true or false, got ${JSON.stringify(leaderElect)}`);
  }
  const namespaceFlag = (value: string | undefined, flag: string): string | undefined => {
    if (value !== undefined && !isDns1123Label(value)) {
      throw invalidArgument(`Expected ${flag} to be a namespace name, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const integer = (text: string, flag: string, min: number, max: number): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw invalidArgument(
        `Expected ${flag} to be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
      );
    }
    return value;
  };
  const logLevel = values['log-level'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw invalidArgument(
      `Expected --log-level to be trace, debug, info, warn or error, got ${JSON.stringify(logLevel)}`,
    );
  }
  return {
    kubeconfig: values.kubeconfig,
    namespace: namespaceFlag(values.namespace, '--namespace'),
    leaderElect: leaderElect === 'true',
    leaseNamespace:
      namespaceFlag(values['leader-election-namespace'], '--leader-election-namespace') ??
      env.POD_NAMESPACE ??
      'k8s-on-k8s-system',
    leaseName: values['lease-name'] ?? 'k8s-on-k8s-operator',
    id: values.id ?? env.POD_NAME ?? hostname(),
    resyncMs: integer(values.resync ?? '60', '--resync', 5, 86_400) * 1000,
    concurrency: integer(values['concurrent-reconciles'] ?? '4', '--concurrent-reconciles', 1, 64),
    healthPort: integer(values['health-port'] ?? '8081', '--health-port', 0, 65_535),
    logLevel,
  };
}

/** A running operator: its health port, and stop() for a signal. */
export interface RunningOperator {
  readonly healthPort: number;
  readonly logger: Logger;
  /** Settles when the operator stops by itself (leadership lost, a fatal error). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/** Starts the operator; leadership and the controller run in the background. */
export async function startOperator(config: OperatorConfig): Promise<RunningOperator> {
  const logger = pino(
    { name: 'k8s-on-k8s-operator', level: config.logLevel, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: true }),
  );
  const infra = loadKubeConfig({ path: config.kubeconfig, inCluster: config.kubeconfig === undefined });
  const api = await KubernetesApi.fromKubeConfig(infra);
  const stopping = new AbortController();
  let leading = !config.leaderElect;

  const health: Server = createServer((req, res) => {
    // /readyz: this replica is working (the leader) or ready to take over; both are healthy.
    const ok = req.url === '/healthz' || req.url === '/readyz';
    res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(ok ? (leading ? 'ok: leading\n' : 'ok: standing by\n') : 'not found\n');
  });
  await new Promise<void>((resolve) => health.listen(config.healthPort, resolve));

  const done = (async () => {
    const leadership = config.leaderElect
      ? await acquireLeadership(
          api,
          { namespace: config.leaseNamespace, name: config.leaseName, identity: config.id, log: logger },
          stopping.signal,
        )
      : undefined;
    leading = true;
    const controller = runController({
      infra,
      api,
      namespace: config.namespace,
      log: logger,
      now: () => new Date(),
      signal: stopping.signal,
      resyncMs: config.resyncMs,
      concurrency: config.concurrency,
    });
    // Lost leadership ends this process's work at once: another replica may act from now on.
    void leadership?.lost.then(() => {
      if (!stopping.signal.aborted) stopping.abort();
    });
    await controller;
    leading = false;
    await leadership?.release();
  })();

  return {
    healthPort: (health.address() as AddressInfo).port,
    logger,
    done,
    async stop() {
      stopping.abort();
      await done.catch(() => undefined);
      await new Promise<void>((resolve) => {
        health.close(() => {
          resolve();
        });
      });
    },
  };
}

export interface OperatorCommandDeps {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly onSignal: (signal: NodeJS.Signals, handler: () => void) => () => void;
}

/** The program: 0 after a signal, 1 when leadership was lost or the controller failed. */
export async function runOperatorCommand(
  argv: readonly string[],
  deps: OperatorCommandDeps,
): Promise<number> {
  const config = parseOperatorFlags(argv);
  if (config === 'help') {
    deps.stdout(OPERATOR_HELP);
    return 0;
  }
  const running = await startOperator(config);
  running.logger.info(
    {
      namespace: config.namespace ?? '(all)',
      leaderElect: config.leaderElect,
      id: config.id,
      healthPort: running.healthPort,
    },
    'started',
  );
  const outcome = await new Promise<'signal' | 'ended'>((resolve) => {
    const offs = (['SIGTERM', 'SIGINT'] as const).map((name) =>
      deps.onSignal(name, () => {
        for (const off of offs) off();
        resolve('signal');
      }),
    );
    running.done.then(
      () => {
        resolve('ended');
      },
      (error: unknown) => {
        running.logger.error({ err: String(error) }, 'stopped by an error');
        resolve('ended');
      },
    );
  });
  await running.stop();
  running.logger.info({ outcome }, 'stopped');
  return outcome === 'signal' ? 0 : 1;
}
