#!/usr/bin/env node
// k8s-on-k8s: the admin CLI. A table of subcommands; each takes argv and resolves with an exit
// code. Expected failures print code, message and a hint, never a stack (runCli in shared).
import { readFile } from 'node:fs/promises';
import { DEFAULT_KUBERNETES_VERSION, runCli, type Subcommand } from '@k8s-on-k8s/shared';
import { SERVER_VERSION } from '../version.js';
import { runInProcess } from '../cli/command-deps.js';
import { runCreate } from '../cli/control-plane/create.js';
import { runDelete } from '../cli/control-plane/delete.js';
import { runKubeconfig } from '../cli/control-plane/kubeconfig.js';
import { runList } from '../cli/control-plane/list.js';
import { runRender } from '../cli/control-plane/render.js';
import { runStatus } from '../cli/control-plane/status.js';
import { runTokenCommand } from '../cli/token.js';
import { runUserDataCommand } from '../cli/userdata.js';

// Subcommands register here, one entry each, in the order `--help` lists them.
const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  create: {
    summary: 'create (or bring up to date) a hosted control plane in a namespace of the infra cluster',
    run: (argv) => runInProcess(runCreate, argv),
  },
  render: {
    summary: 'print the objects create would apply, as YAML, without touching a cluster',
    run: (argv) => runInProcess(runRender, argv),
  },
  delete: {
    summary: 'delete every object of a hosted control plane (--keep-data keeps etcd and the PKI)',
    run: (argv) => runInProcess(runDelete, argv),
  },
  status: {
    summary: "show a control plane's components, certificate expiry and resource requests",
    run: (argv) => runInProcess(runStatus, argv),
  },
  list: {
    summary: 'list the hosted control planes in a namespace',
    run: (argv) => runInProcess(runList, argv),
  },
  kubeconfig: {
    summary: "print a hosted control plane's admin kubeconfig",
    run: (argv) => runInProcess(runKubeconfig, argv),
  },
  token: {
    summary: 'mint, list and revoke join tokens on a join server (create | list | revoke ID)',
    run: (argv) =>
      runTokenCommand(argv, {
        stdout: (text) => {
          console.log(text);
        },
        readFile: (path) => readFile(path, 'utf8'),
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
