#!/usr/bin/env node
// k8s-on-k8s-operator: reconciles HostedControlPlane resources. Expected failures print code,
// message and a hint, never a stack.
import { isK8sOnK8sError, ValidationError } from '@k8s-on-k8s/shared';
import { runOperatorCommand } from '../operator/main.js';

// A promise chain rather than top-level await: the single executable is bundled as CommonJS.
runOperatorCommand(process.argv.slice(2), {
  stdout: (text) => {
    console.log(text);
  },
  stderr: (text) => {
    console.error(text);
  },
  onSignal: (signal, handler) => {
    process.on(signal, handler);
    return () => process.off(signal, handler);
  },
}).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (!isK8sOnK8sError(error)) throw error;
    console.error(`error: ${error.code}: ${error.message}`);
    if (error.hint !== undefined) console.error(`hint: ${error.hint}`);
    else if (error instanceof ValidationError) console.error('hint: run k8s-on-k8s-operator --help');
    process.exit(error instanceof ValidationError ? 2 : 1);
  },
);
