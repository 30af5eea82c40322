// What the control-plane commands need from the process, passed in so tests drive the commands
// in-process against a real apiserver and read what they print.
import { lookup } from 'node:dns/promises';

export interface ControlPlaneCommandDeps {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** Where `create` writes NAME.kubeconfig. */
  readonly cwd: string;
  readonly now: () => Date;
  /** Resolves a host name to addresses (the `--host` check); rejects when it does not resolve. */
  readonly lookupHost: (host: string) => Promise<readonly string[]>;
}

/** The real process: console, cwd, clock and DNS. */
export function processDeps(): ControlPlaneCommandDeps {
  return {
    stdout: (line) => {
      process.stdout.write(`${line}\n`);
    },
    stderr: (line) => {
      process.stderr.write(`${line}\n`);
    },
    cwd: process.cwd(),
    now: () => new Date(),
    lookupHost: async (host) => (await lookup(host, { all: true })).map((a) => a.address),
  };
}

/**
 * Runs a command with the real process and resolves once stdout has drained: the bin calls
 * process.exit, which would cut a large `render` short on a pipe.
 */
export async function runInProcess(
  command: (argv: readonly string[], deps: ControlPlaneCommandDeps) => Promise<number>,
  argv: readonly string[],
): Promise<number> {
  const code = await command(argv, processDeps());
  if (process.stdout.writableLength > 0) {
    await new Promise<void>((resolve) =>
      process.stdout.once('drain', () => {
        resolve();
      }),
    );
  }
  return code;
}
