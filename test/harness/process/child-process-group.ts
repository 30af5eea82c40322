import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerExitCleanup } from './exit-cleanup.js';

/** Every child any group started, so a dying test process can still take them down with it. */
const everyChild = new Set<ChildProcess>();
// Through registerExitCleanup, so a test process ended by SIGINT/SIGTERM (where 'exit' never fires)
// kills them too.
registerExitCleanup(() => {
  for (const child of everyChild) child.kill('SIGKILL');
});

/** A named child process whose output goes to a log file in the group's directory. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
}

/**
 * Starts and stops a set of child processes together; stop() ends them in reverse start order,
 * SIGTERM first and SIGKILL after a deadline, so no process outlives a test.
 */
export class ChildProcessGroup {
  private readonly processes: ManagedProcess[] = [];

  constructor(private readonly logDir: string) {}

  /** Starts `command` with `args`, its stdout and stderr appended to `<logDir>/<name>.log`. */
  start(
    name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv = process.env,
  ): ManagedProcess {
    const logPath = join(this.logDir, `${name}.log`);
    const log = createWriteStream(logPath, { flags: 'a' });
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    everyChild.add(child);
    const exited = new Promise<number | string>((resolve) => {
      child.once('error', (error) => {
        log.write(`spawn failed: ${error.message}\n`);
        resolve('spawn-error');
      });
      child.once('exit', (code, signal) => {
        everyChild.delete(child);
        resolve(code ?? signal ?? 'unknown');
      });
    });
    const managed = { name, child, logPath, exited };
    this.processes.push(managed);
    return managed;
  }

  /** The first process that has already ended, if any: a control plane with one is not going to get ready. */
  firstExited(): ManagedProcess | undefined {
    return this.processes.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
  }

  /** The last `lines` lines of each process's log, for an error message. */
  logTails(lines = 30): string {
    return this.processes
      .map((p) => {
        let text = '';
        try {
          text = readFileSync(p.logPath, 'utf8');
        } catch {
          text = '(no log)';
        }
        const state =
          p.child.exitCode === null && p.child.signalCode === null
            ? 'running'
            : `exited ${p.child.exitCode ?? p.child.signalCode}`;
        return `--- ${p.name} (${state}) ---\n${text.split('\n').slice(-lines).join('\n')}`;
      })
      .join('\n');
  }

  /** Ends every process, newest first: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    for (const p of [...this.processes].reverse()) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
      await p.exited;
      clearTimeout(timer);
    }
  }
}
