#!/usr/bin/env node
// k8s-on-k8s: the admin CLI. A small table of subcommands; each takes argv and resolves with an
// exit code. Expected failures print code, message and a hint, never a stack.
import { DEFAULT_KUBERNETES_VERSION, isK8sOnK8sError, ValidationError } from '@k8s-on-k8s/shared';
import { SERVER_VERSION } from '../version.js';

interface Subcommand {
  readonly summary: string;
  readonly run: (argv: readonly string[]) => Promise<number>;
}

// Subcommands register here, one line each, in the order `--help` lists them.
const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  version: {
    summary: 'print the k8s-on-k8s version and the default Kubernetes version',
    run: () => {
      console.log(
        `k8s-on-k8s ${SERVER_VERSION} (deploys Kubernetes ${DEFAULT_KUBERNETES_VERSION} by default)`,
      );
      return Promise.resolve(0);
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((name) => name.length));
  const lines = Object.entries(SUBCOMMANDS).map(
    ([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`,
  );
  return [
    'Usage: k8s-on-k8s <command> [flags]',
    '',
    'Kubernetes control planes on demand in a namespace of an existing cluster, and the join tokens',
    'that let workers join them.',
    '',
    'Commands:',
    ...lines,
    '',
    "Run k8s-on-k8s <command> --help for a command's flags.",
  ].join('\n');
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
    else if (error instanceof ValidationError) console.error(`hint: run k8s-on-k8s ${name} --help`);
    return error instanceof ValidationError ? 2 : 1;
  }
}

process.exit(await main(process.argv.slice(2)));
