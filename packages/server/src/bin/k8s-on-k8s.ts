#!/usr/bin/env node
// k8s-on-k8s: the admin CLI. A table of subcommands; each takes argv and resolves with an exit
// code. Expected failures print code, message and a hint, never a stack (runCli in shared).
import { readFile } from 'node:fs/promises';
import { DEFAULT_KUBERNETES_VERSION, runCli, type Subcommand } from '@k8s-on-k8s/shared';
import { SERVER_VERSION } from '../version.js';
import { runTokenCommand } from '../token-command.js';
import { runUserDataCommand } from '../user-data-command.js';

// Subcommands register here, one entry each, in the order `--help` lists them.
const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  token: {
    summary: 'mint, list and revoke join tokens on a join server (create | list | revoke ID)',
    run: (argv) =>
      runTokenCommand(argv, {
        stdout: (text) => {
          console.log(text);
        },
        readFile: (path) => readFile(path, 'utf8'),
        env: process.env,
      }),
  },
  userdata: {
    summary: 'print cloud-config or Ignition user-data that installs k8s-join and joins at first boot',
    run: (argv) =>
      runUserDataCommand(argv, {
        out: (text) => {
          process.stdout.write(text);
        },
        readFile: (path) => readFile(path),
      }),
  },
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
