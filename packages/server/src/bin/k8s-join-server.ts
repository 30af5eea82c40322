#!/usr/bin/env node
// k8s-join-server: exchanges join tokens for join bundles.
import { readFile } from 'node:fs/promises';
import { runJoinServerCommand } from '../join-server/main.js';
import { exitWith, onSignal } from './exit-with.js';

exitWith(
  runJoinServerCommand(process.argv.slice(2), {
    stdout: (text) => {
      console.log(text);
    },
    stderr: (text) => {
      console.error(text);
    },
    readFile: (path) => readFile(path, 'utf8'),
    onSignal,
  }),
  'k8s-join-server',
);
