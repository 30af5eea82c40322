// How the server package's long-running programs end: the command's exit code, or for an expected
// failure its code, message and hint (never a stack); 2 for bad flags, 1 otherwise.
import { isK8sOnK8sError, ValidationError } from '@k8s-on-k8s/shared';

/** Waits for `command` and exits the process the way its outcome says; `program` names --help. */
export function exitWith(command: Promise<number>, program: string): void {
  // A promise chain rather than top-level await: the single executables (scripts/build-images.mjs)
  // are bundled as CommonJS, which has none.
  command.then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (!isK8sOnK8sError(error)) throw error;
      console.error(`error: ${error.code}: ${error.message}`);
      if (error.hint !== undefined) console.error(`hint: ${error.hint}`);
      else if (error instanceof ValidationError) console.error(`hint: run ${program} --help`);
      process.exit(error instanceof ValidationError ? 2 : 1);
    },
  );
}

/** process.on/off for a signal, as the commands take it. */
export function onSignal(signal: NodeJS.Signals, handler: () => void): () => void {
  process.on(signal, handler);
  return () => process.off(signal, handler);
}
