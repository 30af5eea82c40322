// What the forwarder tells systemd: READY=1 once it listens (Type=notify), and a STATUS= line that
// `systemctl status` shows, refreshed when health changes and every few seconds.
import type { ForwarderStats } from './forwarder.js';

/** One sd_notify(3) message. */
export interface SystemdMessage {
  readonly ready?: boolean;
  readonly status: string;
}

/** Sends a message if running under systemd; never throws and never waits. */
export type SystemdNotify = (message: SystemdMessage) => void;

/** What the notifier needs from the process. */
export interface SystemdNotifierDeps {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly notifySystemd: (message: SystemdMessage) => Promise<void>;
  readonly stderr: (line: string) => void;
}

/** Reports the forwarder's state to systemd as it changes. */
export interface StatusReporter {
  /** Sends STATUS= if it differs from the last one sent. */
  readonly update: () => void;
  /** Sends READY=1 with the current status and starts the periodic refresh. */
  readonly ready: () => void;
  /** Sends STATUS=draining and stops the refresh. */
  readonly draining: () => void;
}

const STATUS_INTERVAL_MS = 10_000;

/** The systemd STATUS= line: what `systemctl status` shows an operator at a glance. */
export function describeStatus(stats: ForwarderStats): string {
  const listed = stats.upstreams.filter((u) => u.listed).length;
  return `${stats.activeConnections} active connections, ${stats.healthyUpstreams}/${listed} upstreams healthy`;
}

/**
 * A notifier that only speaks when NOTIFY_SOCKET is set (under a Type=notify unit) and, after one
 * failure, warns once and goes quiet: the forwarder keeps relaying without readiness reports.
 */
export function createSystemdNotifier(deps: SystemdNotifierDeps): SystemdNotify {
  const underSystemd = deps.env.NOTIFY_SOCKET !== undefined && deps.env.NOTIFY_SOCKET !== '';
  let notifyFailed = false;
  return (message) => {
    if (!underSystemd || notifyFailed) return;
    deps.notifySystemd(message).catch((error: unknown) => {
      notifyFailed = true;
      deps.stderr(`warning: systemd-notify failed, readiness/status not reported: ${String(error)}`);
    });
  };
}

/** A reporter of the forwarder's stats through `notify`. */
export function createStatusReporter(notify: SystemdNotify, stats: () => ForwarderStats): StatusReporter {
  let lastStatus = '';
  let timer: NodeJS.Timeout | undefined;
  const update = (): void => {
    const status = describeStatus(stats());
    if (status === lastStatus) return;
    lastStatus = status;
    notify({ status });
  };
  return {
    update,
    ready: () => {
      lastStatus = describeStatus(stats());
      notify({ ready: true, status: lastStatus });
      timer = setInterval(update, STATUS_INTERVAL_MS);
      timer.unref();
    },
    draining: () => {
      notify({ status: 'draining' });
      clearInterval(timer);
    },
  };
}
