import { spawn } from 'node:child_process';
import type { CommandResult } from './command-result.js';

/** Runs `command` to completion (stdin: `input`, or none), capturing output, each line also given to `onLine`. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs: number; onLine?: (line: string) => void; input?: string },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: 'pipe' });
    child.stdin.end(options.input);
    let stdout = '';
    let stderr = '';
    let partial = '';
    const lines = (chunk: string): void => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) options.onLine?.(line);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      lines(chunk.toString('utf8'));
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      lines(chunk.toString('utf8'));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ stdout, stderr: `${stderr}${error.message}`, exitCode: -1 });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (partial !== '') options.onLine?.(partial);
      resolve({ stdout, stderr, exitCode: code ?? -1 });
    });
  });
}
