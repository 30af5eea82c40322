import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  ChildProcessGroup,
  cleanupStaleTestResources,
  createNetworkNamespace,
  createNetworkPair,
  ensureWorkerRoot,
  findTestCgroups,
  startWorkerHost,
  type NetworkNamespace,
  type NetworkPair,
  type WorkerHost,
  eventually,
  isProcessAlive,
} from '../harness/index.js';

async function machineAddresses(): Promise<string> {
  return (await execa('ip', ['-o', 'addr'])).stdout;
}

async function networkNamespaceNames(): Promise<string[]> {
  return (await execa('ip', ['netns', 'list'])).stdout.split('\n').map((line) => line.split(' ')[0] ?? '');
}

/** A one-line TCP server for `node -e`: greets each connection with `greeting` and closes it. */
function greetingServer(address: string, port: number, greeting: string): string {
  return `require('net').createServer((s) => s.end(${JSON.stringify(greeting + '\n')})).listen(${port}, ${JSON.stringify(address)}, () => console.log('listening'))`;
}

/** Reads what a TCP server at address:port sends, from inside the worker (bash's /dev/tcp; no extra tools). */
async function readTcpFromWorker(
  worker: WorkerHost,
  address: string,
  port: number,
): Promise<string | undefined> {
  const result = await worker.exec('bash', ['-c', `exec 3<>/dev/tcp/${address}/${port}; cat <&3`], {
    timeoutMs: 5000,
  });
  return result.exitCode === 0 ? result.stdout : undefined;
}

/** What must be gone once a worker host is stopped or cleaned up. */
async function assertWorkerGone(pid: number, netns: string, stateDir: string): Promise<void> {
  await eventually(`worker PID ${pid} to exit`, 10_000, () =>
    Promise.resolve(isProcessAlive(pid) ? undefined : true),
  );
  assert.ok(!(await networkNamespaceNames()).includes(netns), `network namespace ${netns} still exists`);
  assert.ok(
    !readFileSync('/proc/self/mountinfo', 'utf8').includes(stateDir),
    `a mount under ${stateDir} remains`,
  );
  assert.ok(!existsSync(stateDir), `${stateDir} still exists`);
  const id = stateDir.slice(stateDir.lastIndexOf('/') + 1);
  assert.deepEqual(
    findTestCgroups().filter((dir) => dir.endsWith(id)),
    [],
  );
}

describe('worker host: systemd as PID 1 of a fake worker machine', { timeout: 300_000 }, () => {
  let rootDir: string;
  let controlPlaneNetns: NetworkNamespace;
  let workerNetns: NetworkNamespace;
  let pair: NetworkPair;
  let worker: WorkerHost;
  let logDir: string;
  let group: ChildProcessGroup;

  before(async () => {
    await cleanupStaleTestResources();
    rootDir = await ensureWorkerRoot();
    logDir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-worker-host-test-'));
    group = new ChildProcessGroup(logDir);
    controlPlaneNetns = await createNetworkNamespace();
    workerNetns = await createNetworkNamespace();
    pair = await createNetworkPair({
      a: { netns: controlPlaneNetns, address: '198.18.0.1' },
      b: { netns: workerNetns, address: '198.18.0.2' },
    });
    worker = await startWorkerHost({
      name: 'worker-1',
      hostname: 'worker-one',
      netns: workerNetns,
      bindMounts: [{ source: process.execPath, target: '/usr/local/bin/node', readOnly: true }],
      scratchDirs: ['/var/lib/k8s-test-scratch'],
    });
  });

  after(async () => {
    await worker.stop();
    await group.stop();
    await pair.delete();
    await workerNetns.delete();
    await controlPlaneNetns.delete();
    await rm(logDir, { recursive: true, force: true });
  });

  it('boots systemd to running or degraded as PID 1 of its own namespaces', async () => {
    const state = await worker.exec('systemctl', ['is-system-running']);
    assert.match(state.stdout, /^(running|degraded)$/);
    assert.equal((await worker.exec('cat', ['/proc/1/comm'])).stdout, 'systemd');
    assert.equal((await worker.exec('hostname')).stdout, 'worker-one');
    // Its / is the debootstrapped root, not the machine's.
    assert.match(await worker.readFile('/etc/k8s-on-k8s-worker-root'), /^bookworm /);
    const ownPidNs = (await execa('readlink', ['/proc/self/ns/pid'])).stdout;
    assert.notEqual((await worker.exec('readlink', ['/proc/self/ns/pid'])).stdout, ownPidNs);
    // systemd manages a cgroup subtree of its own, which it sees as the root (cgroup namespace).
    const id = worker.stateDir.slice(worker.stateDir.lastIndexOf('/') + 1);
    assert.match(
      readFileSync(`/proc/${worker.pid}/cgroup`, 'utf8'),
      new RegExp(`:name=systemd:/.*${id}/init\\.scope$`, 'm'),
    );
    const inside = await worker.exec('cat', ['/proc/1/cgroup']);
    assert.match(inside.stdout, /:name=systemd:\/init\.scope$/m);
    // The worker's overlay is mounted in its own mount namespace only.
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(worker.stateDir));
    assert.match(
      readFileSync(`/proc/${worker.pid}/mountinfo`, 'utf8'),
      new RegExp(`overlay.*upperdir=${worker.stateDir}/upper`),
    );
  });

  it('runs transient units with systemd-run and shows their output', async () => {
    const piped = await worker.exec('systemd-run', [
      '--quiet',
      '--wait',
      '--pipe',
      'sh',
      '-c',
      'echo "piped from $(hostname)"',
    ]);
    assert.equal(piped.exitCode, 0, piped.stderr);
    assert.equal(piped.stdout, 'piped from worker-one');

    const started = await worker.exec('systemd-run', [
      '--unit=k8s-test-transient',
      '--remain-after-exit',
      'echo',
      'transient-ok',
    ]);
    assert.equal(started.exitCode, 0, started.stderr);
    const journal = await eventually('the transient unit output in the journal', 20_000, async () => {
      const result = await worker.exec('journalctl', ['-u', 'k8s-test-transient', '--no-pager', '-o', 'cat']);
      return result.stdout.includes('transient-ok') ? result.stdout : undefined;
    });
    assert.match(journal, /transient-ok/);
    assert.equal((await worker.exec('systemctl', ['is-active', 'k8s-test-transient'])).stdout, 'active');
  });

  it('loads a unit file written into /etc/systemd/system after daemon-reload', async () => {
    const unitPath = '/etc/systemd/system/k8s-test-hello.service';
    await worker.writeFile(
      unitPath,
      '[Unit]\nDescription=k8s-on-k8s test hello\n\n[Service]\nType=oneshot\nExecStart=/bin/echo hello-from-unit-file\n',
    );
    assert.match(await worker.readFile(unitPath), /hello-from-unit-file/);
    // Written to the worker's upper layer, never into the shared cached root.
    assert.ok(!existsSync(join(rootDir, unitPath)));

    assert.equal((await worker.exec('systemctl', ['daemon-reload'])).exitCode, 0);
    const show = await worker.exec('systemctl', [
      'show',
      '-p',
      'LoadState',
      '-p',
      'Description',
      'k8s-test-hello.service',
    ]);
    assert.match(show.stdout, /^LoadState=loaded$/m);
    assert.match(show.stdout, /^Description=k8s-on-k8s test hello$/m);

    const verify = await worker.exec('systemd-analyze', ['verify', unitPath]);
    assert.equal(verify.exitCode, 0, verify.stderr);
    // verify really checks inside the worker: a relative ExecStart is rejected.
    await worker.writeFile(
      '/etc/systemd/system/k8s-test-broken.service',
      '[Service]\nExecStart=no-such-relative-path\n',
    );
    const broken = await worker.exec('systemd-analyze', [
      'verify',
      '/etc/systemd/system/k8s-test-broken.service',
    ]);
    assert.notEqual(broken.exitCode, 0);

    const start = await worker.exec('systemctl', ['start', 'k8s-test-hello.service']);
    assert.equal(start.exitCode, 0, start.stderr);
    const journal = await worker.exec('journalctl', ['-u', 'k8s-test-hello', '--no-pager', '-o', 'cat']);
    assert.match(journal.stdout, /hello-from-unit-file/);
  });

  it('carries 10.199.199.199 on the worker loopback, never in the machine namespace', async () => {
    const add = await worker.exec('ip', ['addr', 'add', '10.199.199.199/32', 'dev', 'lo']);
    assert.equal(add.exitCode, 0, add.stderr);
    const run = await worker.exec('systemd-run', [
      '--unit=k8s-test-listener',
      'node',
      '-e',
      greetingServer('10.199.199.199', 6443, 'hello-from-10.199.199.199'),
    ]);
    assert.equal(run.exitCode, 0, run.stderr);
    const greeting = await eventually('the listener on 10.199.199.199:6443 inside the worker', 20_000, () =>
      readTcpFromWorker(worker, '10.199.199.199', 6443),
    );
    assert.equal(greeting, 'hello-from-10.199.199.199');

    assert.match(
      (await worker.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout,
      /10\.199\.199\.199\/32/,
    );
    assert.doesNotMatch(await machineAddresses(), /10\.199\.199\.199/);
    assert.doesNotMatch((await controlPlaneNetns.run('ip', ['-o', 'addr'])).stdout, /10\.199\.199\.199/);
  });

  it('reaches a TCP server in the control-plane namespace over the veth pair', async () => {
    const command = controlPlaneNetns.command(process.execPath, [
      '-e',
      greetingServer('198.18.0.1', 7443, 'hello-from-control-plane'),
    ]);
    const server = group.start('control-plane-server', command.command, command.args);
    await eventually('the control-plane server to listen', 20_000, () =>
      Promise.resolve(readFileSync(server.logPath, 'utf8').includes('listening') ? true : undefined),
    );
    const greeting = await eventually('a connection from the worker to 198.18.0.1:7443', 20_000, () =>
      readTcpFromWorker(worker, '198.18.0.1', 7443),
    );
    assert.equal(greeting, 'hello-from-control-plane');

    assert.match((await worker.exec('ip', ['-o', 'addr'])).stdout, /198\.18\.0\.2\/24/);
    // Both ends live in the test's namespaces; the machine has neither address nor interface.
    const machine = await machineAddresses();
    assert.doesNotMatch(machine, /198\.18\.0\.[12]\//);
    assert.doesNotMatch(machine, new RegExp(pair.a.interface));
  });

  it('gives scratch dirs a real filesystem where overlayfs can put its upper layer', async () => {
    // What containerd's overlayfs snapshotter does under /var/lib/containerd.
    const mountOverlayIn = (base: string) =>
      worker.exec('sh', [
        '-c',
        `mkdir -p ${base}/l ${base}/u ${base}/w ${base}/m && mount -t overlay overlay -o lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w ${base}/m`,
      ]);
    assert.equal((await worker.exec('stat', ['-f', '-c', '%T', '/var/tmp'])).stdout, 'overlayfs');
    assert.notEqual((await mountOverlayIn('/var/tmp/overlay-test')).exitCode, 0);
    assert.notEqual(
      (await worker.exec('stat', ['-f', '-c', '%T', '/var/lib/k8s-test-scratch'])).stdout,
      'overlayfs',
    );
    const scratch = await mountOverlayIn('/var/lib/k8s-test-scratch/overlay-test');
    assert.equal(scratch.exitCode, 0, scratch.stderr);
  });

  it('refuses addresses outside the test blocks and namespaces that are not the test’s', async () => {
    await assert.rejects(
      createNetworkPair({
        a: { netns: controlPlaneNetns, address: '192.168.1.1' },
        b: { netns: workerNetns, address: '198.18.0.9' },
      }),
      /a\.address .*"192\.168\.1\.1"/,
    );
    await assert.rejects(
      createNetworkPair({
        a: { netns: 'default', address: '198.18.0.8' },
        b: { netns: workerNetns, address: '198.18.0.9' },
      }),
      /test network namespace/,
    );
  });

  it('stop() leaves no process, mount, cgroup or namespace behind', async () => {
    const host = await startWorkerHost({ name: 'worker-stop' });
    const { pid, netns, stateDir } = host;
    assert.ok(isProcessAlive(pid));
    assert.ok((await networkNamespaceNames()).includes(netns));
    assert.ok(existsSync(join(stateDir, 'upper')));
    await host.stop();
    await assertWorkerGone(pid, netns, stateDir);
    await host.stop();
  });

  for (const death of ['exit', 'SIGKILL'] as const) {
    it(`cleans up a worker host whose test process died (${death})`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-worker-host-crash-'));
      const script = join(dir, 'crash.mjs');
      const index = fileURLToPath(new URL('../harness/index.js', import.meta.url));
      await writeFile(
        script,
        `import { startWorkerHost } from ${JSON.stringify(index)};
const host = await startWorkerHost({ name: 'crash' });
console.log(JSON.stringify({ pid: host.pid, netns: host.netns, stateDir: host.stateDir }));
${death === 'exit' ? 'process.exit(3);' : 'setInterval(() => {}, 1000);'}
`,
      );
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const exited = new Promise<void>((resolve) =>
        child.once('exit', () => {
          resolve();
        }),
      );
      const line = await eventually('the crashing test process to start its worker', 60_000, () =>
        Promise.resolve(output.includes('\n') ? output.split('\n')[0] : undefined),
      );
      const started = JSON.parse(line) as { pid: number; netns: string; stateDir: string };
      if (death === 'SIGKILL') {
        child.kill('SIGKILL');
        await exited;
        // Nothing ran in the dead process: the worker outlives it until the stale cleanup.
        assert.ok(isProcessAlive(started.pid));
        const removed = await cleanupStaleTestResources();
        assert.ok(removed.networkNamespaces.includes(started.netns));
      } else {
        await exited;
      }
      await assertWorkerGone(started.pid, started.netns, started.stateDir);
      await rm(dir, { recursive: true, force: true });
    });
  }
});
