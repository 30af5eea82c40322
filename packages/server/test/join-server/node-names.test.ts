import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { NodeObject, WatchEvent } from '../../src/kube/api.js';
import { startNodeNames } from '../../src/join-server/node-names.js';

// The watched Node names a join asks instead of the apiserver: answered by the apiserver until the
// first list arrives, then by the list and the watch's events, and by the apiserver again while a
// relist after a failure is under way.

/** An apiserver double for Nodes: a list to answer, and watch events pushed by the test. */
function fakeNodes(initial: string[]) {
  const gets: string[] = [];
  let push: ((event: WatchEvent<NodeObject>) => void) | undefined;
  let releaseList: (() => void) | undefined;
  let listGate = Promise.resolve();
  const node = (name: string): NodeObject => ({ metadata: { name, resourceVersion: '2' } });
  return {
    gets,
    holdNextList() {
      listGate = new Promise((resolve) => (releaseList = resolve));
    },
    releaseList: () => releaseList?.(),
    send(type: WatchEvent<NodeObject>['type'], name: string) {
      push?.({ type, object: node(name) });
    },
    kube: {
      nodeExists(name: string) {
        gets.push(name);
        return Promise.resolve(initial.includes(name));
      },
      async listNodes() {
        await listGate;
        return { items: initial.map(node), resourceVersion: '1' };
      },
      async *watchNodes(_rv: string, signal: AbortSignal): AsyncGenerator<WatchEvent<NodeObject>> {
        const queue: WatchEvent<NodeObject>[] = [];
        let wake: (() => void) | undefined;
        push = (event) => {
          queue.push(event);
          wake?.();
        };
        signal.addEventListener('abort', () => wake?.());
        while (!signal.aborted) {
          const event = queue.shift();
          if (event !== undefined) yield event;
          else await new Promise<void>((resolve) => (wake = resolve));
        }
      },
    },
  };
}

const eventually = async (check: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 200; i += 1) {
    if (await check()) return;
    await sleep(5);
  }
  assert.fail('condition not reached within 1 s');
};

describe('node names', () => {
  it('asks the apiserver until the first list, then answers from the list and the watch', async () => {
    const fake = fakeNodes(['a']);
    fake.holdNextList();
    const names = startNodeNames({ kube: fake.kube, logger: pino({ level: 'silent' }) });
    try {
      assert.equal(await names.nodeExists('a'), true);
      assert.deepEqual(fake.gets, ['a'], 'before the list: a GET');
      fake.releaseList();
      await eventually(async () => {
        const before = fake.gets.length;
        await names.nodeExists('b');
        return fake.gets.length === before;
      });
      const gets = fake.gets.length;
      fake.send('ADDED', 'b');
      await eventually(() => names.nodeExists('b'));
      fake.send('DELETED', 'a');
      await eventually(async () => !(await names.nodeExists('a')));
      assert.equal(fake.gets.length, gets, 'synced: no GET per join');
    } finally {
      await names.stop();
    }
  });
});
