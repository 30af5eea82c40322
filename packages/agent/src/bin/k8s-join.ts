#!/usr/bin/env node
// k8s-join: the worker agent's entry point. A table of subcommands (runCli in shared); `join` is
// also what runs when the first argument is a flag, so `k8s-join --token-file … --server …` works.
import { readFile } from 'node:fs/promises';
import { setTimeout as setTimeoutPromise } from 'node:timers/promises';
import { isSea } from 'node:sea';
import notify from 'systemd-notify';
import { runCli, type Subcommand } from '@k8s-on-k8s/shared';
import type { ForwardCommandDeps } from '../forward/forward-command-deps.js';
import { runForwardCommand } from '../forward/forward-command.js';
import { joinExitCode, runJoinCommand } from '../join/join-command.js';
import { createNodeSystem } from '../node/node-system.js';
import { runResetCommand } from '../join/reset-command.js';
import { AGENT_VERSION } from '../version.js';

const out = (line: string): void => {
  console.log(line);
};
const err = (line: string): void => {
  console.error(line);
};

const forwardDeps: ForwardCommandDeps = {
  stdout: out,
  stderr: err,
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

// How a systemd unit starts this same agent: the single executable itself, or node + this script.
const selfCommand = isSea() ? [process.execPath] : [process.execPath, process.argv[1] ?? ''];

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  join: {
    summary: 'join this machine to a hosted control plane as a worker (the default command)',
    run: (argv) =>
      runJoinCommand(argv, {
        systemAt: createNodeSystem,
        env: process.env,
        out,
        warn: err,
        sleep: (ms) => setTimeoutPromise(ms),
        selfCommand,
        readLocalFile: (path) => readFile(path, 'utf8'),
      }),
    exitCode: joinExitCode,
  },
  reset: {
    summary: 'undo a join: stop and remove the units, the VIP and the files join wrote',
    run: (argv) => runResetCommand(argv, { systemAt: createNodeSystem, out }),
  },
  forward: {
    summary: 'relay the API VIP to healthy apiserver endpoints (replaces socat)',
    run: (argv) => runForwardCommand(argv, forwardDeps),
  },
  version: {
    summary: 'print the agent version',
    run: () => {
      out(`k8s-join ${AGENT_VERSION}`);
      return Promise.resolve(0);
    },
  },
};

runCli(
  {
    name: 'k8s-join',
    description:
      'Joins a systemd Linux machine (Flatcar, Fedora CoreOS, Debian, …) to a hosted Kubernetes control\nplane, and runs the API forwarder on it.',
    subcommands: SUBCOMMANDS,
    defaultSubcommand: 'join',
    out,
    err,
  },
  process.argv.slice(2),
).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
