// SIGHUP (`systemctl reload`, ExecReload=kill -HUP) re-reads --upstreams-file. A file that does not
// parse changes nothing: the forwarder keeps relaying to the list it has.
import { describeError, formatHostPort } from '@k8s-on-k8s/shared';
import type { ForwardCommandDeps } from './forward-command-deps.js';
import { readUpstreamsFile } from './forward-flags.js';
import type { Forwarder } from './forwarder.js';

/** Subscribes the reload to SIGHUP; returns the unsubscribe. */
export function reloadUpstreamsOnHangup(
  path: string,
  forwarder: Pick<Forwarder, 'setUpstreams'>,
  deps: Pick<ForwardCommandDeps, 'onSignal' | 'readFile' | 'stdout' | 'stderr'>,
  onReloaded: () => void,
): () => void {
  return deps.onSignal('SIGHUP', () => {
    readUpstreamsFile(path, deps.readFile).then(
      (list) => {
        forwarder.setUpstreams(list);
        deps.stdout(`reloaded ${path}: forwarding to ${list.map(formatHostPort).join(', ')}`);
        onReloaded();
      },
      (error: unknown) => {
        deps.stderr(`error: kept the previous upstreams, ${path} is unusable: ${describeError(error)}`);
      },
    );
  });
}
