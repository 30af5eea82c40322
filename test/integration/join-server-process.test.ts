import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import {
  issueCertificate,
  parseCreatedToken,
  parseJoinBundle,
  type CertifiedKeyPair,
  type CreatedToken,
} from '@k8s-on-k8s/shared';
import { readTokenFile } from '@k8s-on-k8s/server';
import {
  applyJoinServerRbac,
  callJoinServer,
  joinRequestBody,
  prepareJoinServerFiles,
  startInProcessJoinServer,
  startLocalKubeCluster,
  type JoinServerFiles,
  type LocalKubeCluster,
} from '../harness/index.js';

// The built executables as child processes: k8s-join-server drains on SIGTERM and keeps a
// readable store across kill -9; `k8s-on-k8s token` mints, lists and revokes through it.

const BIN = new URL('../../../packages/server/dist/src/bin/', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

interface ChildServer {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly lines: string[];
  /** Resolves with the first log line whose msg is `msg`, failing after `timeoutMs`. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function spawnJoinServer(flags: readonly string[]): Promise<ChildServer> {
  const child = spawn(process.execPath, [join(BIN, 'k8s-join-server.js'), ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { msg: string; resolve: (entry: Record<string, unknown>) => void }[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      for (const waiter of waiters.filter((w) => w.msg === entry.msg)) waiter.resolve(entry);
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const waitForLog = (msg: string, timeoutMs = 20_000): Promise<Record<string, unknown>> => {
    const seen = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
    const found = seen.find((entry) => entry.msg === msg);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `no "${msg}" log line within ${timeoutMs}ms; stderr: ${stderr}\nstdout: ${lines.join('\n')}`,
          ),
        );
      }, timeoutMs);
      waiters.push({
        msg,
        resolve: (entry) => {
          clearTimeout(timer);
          resolve(entry);
        },
      });
      void exited.then(({ code }) => {
        clearTimeout(timer);
        reject(new Error(`k8s-join-server exited (${String(code)}) before "${msg}": ${stderr}`));
      });
    });
  };
  const listening = await waitForLog('listening');
  const url = String(listening.url);
  return { child, url, port: Number(new URL(url).port), lines, waitForLog, exited };
}

describe('k8s-join-server as a child process', () => {
  let cp: LocalKubeCluster;
  let dir: string;
  let files: JoinServerFiles;
  let masters: CertifiedKeyPair;

  before(async () => {
    cp = await startLocalKubeCluster({ name: 'join-process' });
    dir = await mkdtemp(join(tmpdir(), 'join-server-process-'));
    await applyJoinServerRbac(cp);
    files = await prepareJoinServerFiles(cp, dir);
    masters = await issueCertificate(cp.ca, {
      commonName: 'root',
      organizations: ['system:masters'],
      usage: 'client',
    });
  });
  after(async () => {
    await cp.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const mint = async (url: string, body: Record<string, unknown> = {}): Promise<CreatedToken> => {
    const answer = await callJoinServer(`${url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      clientCert: masters,
      body,
    });
    assert.equal(answer.status, 201, answer.text);
    return parseCreatedToken(answer.json());
  };

  it('on SIGTERM stops accepting connections but finishes the join in flight, then exits 0', async () => {
    const server = await spawnJoinServer([
      ...files.baseFlags,
      '--store',
      `file:${join(dir, 'drain.json')}`,
      '--api-endpoint',
      cp.url,
    ]);
    try {
      const created = await mint(server.url);
      const body = JSON.stringify(joinRequestBody('draining-node'));
      const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca: cp.ca.certPem });
      await once(socket, 'secureConnect');
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      // Expect: 100-continue makes the server say when it has the request headers, so the join is
      // provably in flight (its body still to come) when the signal arrives.
      socket.write(
        [
          'POST /v1/join HTTP/1.1',
          'Host: 127.0.0.1',
          `Authorization: Bearer ${created.token}`,
          'Content-Type: application/json',
          `Content-Length: ${Buffer.byteLength(body)}`,
          'Expect: 100-continue',
          'Connection: close',
          '',
          '',
        ].join('\r\n'),
      );
      while (!received.includes('100 Continue')) await once(socket, 'data');

      server.child.kill('SIGTERM');
      await server.waitForLog('shutting down: finishing in-flight requests');
      await assert.rejects(
        new Promise((resolve, reject) => {
          const probe = tcpConnect({ host: '127.0.0.1', port: server.port }, () => {
            probe.end();
            resolve(undefined);
          });
          probe.on('error', reject);
        }),
        /ECONNREFUSED/,
        'a draining server accepts no new connections',
      );

      socket.write(body);
      await once(socket, 'end');
      const [head = '', payload = ''] = received.slice(received.lastIndexOf('HTTP/1.1 ')).split('\r\n\r\n');
      assert.match(head, /^HTTP\/1\.1 200 /);
      const bundle = parseJoinBundle(JSON.parse(payload));
      assert.equal(bundle.nodeName, 'draining-node');
      assert.deepEqual(await server.exited, { code: 0, signal: null });
      await server.waitForLog('stopped');
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('leaves a readable store holding every acknowledged token when killed with SIGKILL during writes', async () => {
    const storePath = join(dir, 'kill', 'tokens.json');
    const acknowledged = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      const server = await spawnJoinServer([
        ...files.baseFlags,
        '--store',
        `file:${storePath}`,
        '--rate-limit-per-ip',
        '0',
      ]);
      const agent = new Agent({ connect: { ca: cp.ca.certPem, cert: masters.certPem, key: masters.keyPem } });
      let stop = false;
      let inRound = 0;
      // Eight writers keep the store busy (each create is a temp file + fsync + rename).
      const writers = Array.from({ length: 8 }, async () => {
        while (!stop) {
          try {
            const answer = await callJoinServer(`${server.url}/v1/tokens`, {
              caPem: cp.ca.certPem,
              body: { uses: 1 },
              agent,
            });
            if (answer.status !== 201) continue;
            const created = parseCreatedToken(answer.json());
            acknowledged.set(created.id, created.token);
            inRound++;
          } catch {
            return; // The server is gone.
          }
        }
      });
      while (inRound < 40) await new Promise((resolve) => setTimeout(resolve, 10));
      server.child.kill('SIGKILL');
      assert.equal((await server.exited).signal, 'SIGKILL');
      stop = true;
      await Promise.all(writers);
      await agent.close();

      const records = await readTokenFile(storePath);
      const stored = new Set(records.map((r) => r.id));
      for (const id of acknowledged.keys())
        assert.ok(stored.has(id), `acknowledged token ${id} is missing after kill -9`);
      assert.equal((await stat(storePath)).mode & 0o777, 0o600);
      const text = await readFile(storePath, 'utf8');
      for (const token of acknowledged.values()) assert.ok(!text.includes(token.split('.')[1] ?? ''));
    }
    // A restarted server serves the same store: a token acknowledged before the last kill joins.
    const server = await spawnJoinServer([
      ...files.baseFlags,
      '--store',
      `file:${storePath}`,
      '--api-endpoint',
      cp.url,
    ]);
    try {
      const [, token = ''] = [...acknowledged.entries()][0] ?? [];
      const answer = await callJoinServer(`${server.url}/v1/join`, {
        caPem: cp.ca.certPem,
        token,
        body: joinRequestBody('after-crash'),
      });
      assert.equal(answer.status, 200, answer.text);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('k8s-on-k8s token create|list|revoke works with a hosted-cluster kubeconfig and refuses others', async () => {
    const server = await startInProcessJoinServer([
      ...files.baseFlags,
      '--store',
      `file:${join(dir, 'cli.json')}`,
    ]);
    const cli = (...args: string[]) =>
      execFileAsync(
        process.execPath,
        [join(BIN, 'k8s-on-k8s.js'), 'token', ...args, '--server', server.url],
        { encoding: 'utf8' },
      );
    try {
      const created = await cli(
        'create',
        '--kubeconfig',
        cp.adminKubeconfigPath,
        '--uses',
        '2',
        '--ttl',
        '30m',
        '--description',
        'from the CLI',
        '--label',
        'pool=blue',
        '--taint',
        'dedicated=ci:NoSchedule',
        '--output',
        'json',
      );
      const token = parseCreatedToken(JSON.parse(created.stdout));
      assert.equal(token.usesLeft, 2);
      assert.match(
        token.joinCommand,
        /^K8S_JOIN_TOKEN=\S+ k8s-join join --server https:\/\/127\.0\.0\.1:\d+ --ca-cert-hash sha256:[0-9a-f]{64}$/,
      );

      const text = await cli('create', '--kubeconfig', cp.adminKubeconfigPath);
      assert.match(text.stdout, /join token ([a-z0-9]{6}) \(shown only once\)/);
      assert.match(text.stdout, /On the worker, run:\n\n {2}K8S_JOIN_TOKEN=/);

      const list = await cli('list', '--kubeconfig', cp.adminKubeconfigPath);
      assert.match(list.stdout, /^ID\s+EXPIRES\s+USES LEFT\s+STATE/);
      assert.match(list.stdout, new RegExp(`${token.id}\\s+\\S+\\s+2/2\\s+active\\s+-\\s+from the CLI`));
      assert.ok(!list.stdout.includes(token.token.split('.')[1] ?? ''));

      const revoked = await cli('revoke', token.id, '--kubeconfig', cp.adminKubeconfigPath);
      assert.match(revoked.stdout, new RegExp(`join token ${token.id} revoked`));
      const join1 = await callJoinServer(`${server.url}/v1/join`, {
        caPem: cp.ca.certPem,
        token: token.token,
        body: joinRequestBody('cli-node'),
      });
      assert.equal(join1.status, 401);

      // The join server's own identity is not an admin: a 403 that says why, exit code 1.
      const refused = await cli('list', '--kubeconfig', files.kubeconfigPath).then(
        () => assert.fail('expected a failure'),
        (error: unknown) => error as { code?: number; stderr?: string },
      );
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr ?? '',
        /FORBIDDEN: client certificate user "k8s-join-server" .* is not in system:masters/,
      );

      const usage = await cli('create').then(
        () => assert.fail('expected a failure'),
        (error: unknown) => error as { code?: number; stderr?: string },
      );
      assert.equal(usage.code, 2);
    } finally {
      await server.shutdown(5000);
    }
  });
});
