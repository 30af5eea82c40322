#!/usr/bin/env node
// k8s-on-k8s: the admin CLI. A table of subcommands; each takes argv and resolves with an exit
// code. Expected failures print code, message and a hint, never a stack (runCli in shared).
import { DEFAULT_KUBERNETES_VERSION, runCli, type Subcommand } from '@k8s-on-k8s/shared';
import { SERVER_VERSION } from '../version.js';

// Subcommands register here, one entry each, in the order `--help` lists them.
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

const code = await runCli(
  {
    name: 'k8s-on-k8s',
    description:
      'Kubernetes control planes on demand in a namespace of an existing cluster, and the join tokens\nthat let workers join them.',
    subcommands: SUBCOMMANDS,
    out: (text) => {
      console.log(text);
    },
    err: (text) => {
      console.error(text);
    },
  },
  process.argv.slice(2),
);
process.exit(code);
