import type { SystemdMessage } from './systemd-status.js';

/** What the forward command needs from the process; the bin passes the real ones. */
export interface ForwardCommandDeps {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile: (path: string) => Promise<string>;
  /** Subscribes to a process signal; returns the unsubscribe. */
  readonly onSignal: (signal: NodeJS.Signals, handler: () => void) => () => void;
  /** sd_notify(3); only called when NOTIFY_SOCKET is set, i.e. under a Type=notify unit. */
  readonly notifySystemd: (message: SystemdMessage) => Promise<void>;
}
