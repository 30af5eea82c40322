#!/usr/bin/env node
// k8s-on-k8s-operator: reconciles HostedControlPlane resources.
import { runOperatorCommand } from '../operator/main.js';
import { exitWith, onSignal } from './exit-with.js';

exitWith(
  runOperatorCommand(process.argv.slice(2), {
    stdout: (text) => {
      console.log(text);
    },
    stderr: (text) => {
      console.error(text);
    },
    onSignal,
  }),
  'k8s-on-k8s-operator',
);
