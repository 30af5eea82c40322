#!/usr/bin/env node
// k8s-join: the worker agent's entry point. A small table of subcommands; each one takes argv and
// the process's I/O and resolves with an exit code. Expected failures print code, message and a
// hint, never a stack.
import { readFile } from 'node:fs/promises';
import notify from 'systemd-notify';
import { isK8sOnK8sError, ValidationError } from '@k8s-on-k8s/shared';
import { runForwardCommand, type ForwardCommandDeps } from '../forward-command.js';

interface Subcommand {
  readonly summary: string;
  readonly run: (argv: readonly string[]) => Promise<number>;
}

const processDeps: ForwardCommandDeps = {
  stdout: (line) => {
    console.log(line);
  },
  stderr: (line) => {
    console.error(line);
  },
  env: process.env,
  readFile: (path) => readFile(path, 'utf8'),
  onSignal: (signal, handler) => {
    process.on(signal, handler);
    return () => process.off(signal, handler);
  },
  notifySystemd: async (message) => {
    await notify(message);
  },
};

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  forward: {
    summary: 'relay the API VIP to healthy apiserver endpoints (replaces socat)',
    run: (argv) => runForwardCommand(argv, processDeps),
  },
  version: {
    summary: 'print the agent version',
    run: async () => {
      const manifest = JSON.parse(
        await readFile(new URL('../../../package.json', import.meta.url), 'utf8'),
      ) as {
        version?: unknown;
      };
      console.log(`k8s-join ${String(manifest.version)}`);
      return 0;
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((name) => name.length));
  const lines = Object.entries(SUBCOMMANDS).map(
    ([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`,
  );
  return `Usage: k8s-join <command> [flags]\n\nCommands:\n${lines.join('\n')}\n\nRun k8s-join <command> --help for a command's flags.`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const subcommand = SUBCOMMANDS[name];
  if (subcommand === undefined) {
    console.error(`error: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  try {
    return await subcommand.run(rest);
  } catch (error) {
    if (!isK8sOnK8sError(error)) throw error;
    console.error(`error: ${error.code}: ${error.message}`);
    if (error.hint !== undefined) console.error(`hint: ${error.hint}`);
    else if (error instanceof ValidationError) console.error(`hint: run k8s-join ${name} --help`);
    return error instanceof ValidationError ? 2 : 1;
  }
}

process.exit(await main(process.argv.slice(2)));
