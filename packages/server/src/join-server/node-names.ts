import type { Logger } from 'pino';
import type { KubernetesApi } from '../kube/api.js';
import { runListWatch } from '../kube/list-watch.js';

// The names of the registered Nodes, kept by a list-watch, so a join does not cost a Node GET on
// the hosted apiserver (half of its requests, issue 13's bench:join). Only for the join's early
// answer (409 for a name already registered): a Node registered a moment before may not be here
// yet, and the CSR approver, which decides what a bootstrap credential can become, asks the
// apiserver itself. Until the first list has arrived, and while the watch is broken, it asks the
// apiserver too.

/** Whether a Node of that name is registered. */
export interface NodeNames {
  nodeExists(name: string): Promise<boolean>;
  /** Ends the watch and resolves once the loop has stopped. */
  stop(): Promise<void>;
}

/** Starts the list-watch of Nodes (names only matter) and answers from it once synced. */
export function startNodeNames(deps: {
  readonly kube: Pick<KubernetesApi, 'nodeExists' | 'listNodes' | 'watchNodes'>;
  readonly logger: Logger;
}): NodeNames {
  const log = deps.logger.child({ component: 'node-names' });
  const abort = new AbortController();
  let names: Set<string> | undefined;
  const running = runListWatch(
    {
      async list() {
        // A relist after a failure starts stale: ask the apiserver until it has arrived.
        names = undefined;
        return deps.kube.listNodes();
      },
      watch: (resourceVersion, signal) => deps.kube.watchNodes(resourceVersion, signal),
    },
    {
      listed(items) {
        names = new Set(items.map((node) => node.metadata.name));
      },
      event(type, node) {
        if (type === 'DELETED') names?.delete(node.metadata.name);
        else names?.add(node.metadata.name);
      },
    },
    { signal: abort.signal, log, what: { resource: 'nodes' } },
  );
  return {
    nodeExists: (name) =>
      names === undefined ? deps.kube.nodeExists(name) : Promise.resolve(names.has(name)),
    async stop() {
      abort.abort();
      await running;
    },
  };
}
