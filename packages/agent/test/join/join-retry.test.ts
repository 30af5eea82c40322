// `--retry`: a busy or failing join server (429, 503) is retried within a time budget, as its
// Retry-After says; a rejected token or a wrong pin is not. A real HTTPS server on port 0, with
// the clock and sleeping injected so no test waits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CertifiedKeyPair } from '@k8s-on-k8s/shared';
import { joinExitCode, runJoinCommand } from '../../src/join/join-command.js';
import { createNodeSystem } from '../../src/node/node-system.js';
import {
  createCas,
  createJoinRoot,
  errorAnswer,
  goodBundle,
  joinArgs,
  joinDeps,
  startJoinServerStub,
  type StubAnswer,
} from './join-server-stub.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface RetryRun {
  readonly code: number;
  readonly error: unknown;
  readonly lines: string[];
  readonly waits: number[];
  readonly requests: number;
}

/** Joins against a stub scripted with `answers`; sleeping advances a fake clock instead of waiting. */
async function joinAgainst(
  ca: CertifiedKeyPair,
  answers: readonly StubAnswer[],
  extra: readonly string[],
  options: { pin?: string } = {},
): Promise<RetryRun> {
  const stub = await startJoinServerStub(ca, answers);
  const joinRoot = await createJoinRoot();
  cleanups.push(() => stub.stop(), joinRoot.cleanup);
  let now = Date.now();
  const waits: number[] = [];
  const deps = joinDeps({
    systemAt: (root) => ({ ...createNodeSystem(root), now: () => new Date(now) }),
    sleep: (ms) => {
      waits.push(ms);
      now += ms;
      return Promise.resolve();
    },
  });
  const args = joinArgs(stub, joinRoot.root, extra);
  if (options.pin !== undefined) args[args.indexOf('--ca-cert-hash') + 1] = options.pin;
  try {
    const code = await runJoinCommand(args, deps);
    return { code, error: undefined, lines: deps.lines, waits, requests: stub.requests() };
  } catch (error) {
    return { code: joinExitCode(error), error, lines: deps.lines, waits, requests: stub.requests() };
  }
}

describe('k8s-join join --retry', () => {
  let ca: CertifiedKeyPair;
  before(async () => {
    ({ ca } = await createCas());
  });

  it('retries a 429 and a 503, waiting as long as Retry-After says, then joins', async () => {
    const run = await joinAgainst(
      ca,
      [
        errorAnswer(429, 'RATE_LIMITED', { 'retry-after': '7' }),
        errorAnswer(503, 'STORE_ERROR'),
        { status: 200, body: goodBundle(ca) },
      ],
      ['--retry', '5m'],
    );
    assert.equal(run.code, 0, String(run.error));
    assert.equal(run.requests, 3);
    assert.equal(run.waits[0], 7000, 'Retry-After: 7 is honoured');
    assert.ok(
      run.waits.length === 2 && run.waits[1] !== undefined && run.waits[1] >= 500,
      run.waits.join(','),
    );
    assert.ok(
      run.lines.some((l) => /^\[retry\] RATE_LIMITED: .*attempt 1; next in 7s$/.test(l)),
      run.lines.join('\n'),
    );
  });

  it('does not retry a rejected token: exit 6 after one request', async () => {
    const run = await joinAgainst(ca, [errorAnswer(401, 'TOKEN_REJECTED')], ['--retry', '5m']);
    assert.equal(run.code, 6);
    assert.equal(run.requests, 1);
    assert.deepEqual(run.waits, []);
  });

  it('does not retry a pin mismatch: exit 4, no request sent', async () => {
    const run = await joinAgainst(ca, [{ status: 200, body: goodBundle(ca) }], ['--retry', '5m'], {
      pin: `sha256:${'0'.repeat(64)}`,
    });
    assert.equal(run.code, 4);
    assert.equal(run.requests, 0);
    assert.deepEqual(run.waits, []);
  });

  it('gives up once the budget is spent: exit 7, and says how long it tried', async () => {
    const run = await joinAgainst(
      ca,
      [errorAnswer(503, 'UPSTREAM_ERROR', { 'retry-after': '20' })],
      ['--retry', '50s'],
    );
    assert.equal(run.code, 7, String(run.error));
    assert.deepEqual(run.waits, [20_000, 20_000]);
    assert.equal(run.requests, 3, 'the third answer would have to wait past the budget');
    assert.match((run.error as Error).message, /UPSTREAM_ERROR \(stub\)/);
    assert.match(
      String((run.error as { hint?: string }).hint),
      /gave up after 3 attempts in 40s \(--retry 50s\)/,
    );
  });

  it('without --retry a 429 fails at once with exit 7 and a hint naming --retry', async () => {
    const run = await joinAgainst(ca, [errorAnswer(429, 'RATE_LIMITED', { 'retry-after': '3' })], []);
    assert.equal(run.code, 7);
    assert.equal(run.requests, 1);
    assert.deepEqual(run.waits, []);
    assert.match(String((run.error as { hint?: string }).hint), /--retry/);
  });
});
