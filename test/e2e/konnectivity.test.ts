// kubectl logs, exec, port-forward and cp for a worker the control plane cannot route to (issue 14).
// The hosted control plane runs as pods on the infra node, as in join-end-to-end; its one worker is
// behind NAT: the admin's namespace masquerades the worker's connections to the infra side and
// drops every new connection from the infra side into the worker's subnet, so the apiserver pod
// cannot dial the kubelet's 10250. The worker's konnectivity agent dials out (VIP:8132 → its second
// forwarder → the proxy server's NodePort) and carries the apiserver's dials back. kubectl is the
// one built from k8s.io/kubernetes/cmd/kubectl. Then the same control plane without konnectivity
// (`create --konnectivity=false`): the same kubectl logs fails, so the path above is the only one.
// Between them, the worker dies silently (its packets dropped both ways): the proxy servers drop
// its tunnels on their keepalive, no dial stays pending, and it reconnects once it is back.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import {
  PROBE_IMAGE,
  SHELL_IMAGE,
  eventually,
  shellPod,
  joinCommandArgs,
  startHostedOnInfra,
  type HostedOnInfra,
  type JoinWorker,
} from '../harness/index.js';

const NAME = 'knp';
const NAMESPACE = 'hosted-knp';
const WORKER = 'nat-worker';
const WORKER_ADDRESS = '198.18.1.2';

describe('logs, exec, port-forward and cp through konnectivity, to a worker behind NAT', () => {
  let dir: string;
  let cluster: HostedOnInfra;
  let worker: JoinWorker;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-knp-'));
  });

  after(async () => {
    await (worker as JoinWorker | undefined)?.stop();
    await (cluster as HostedOnInfra | undefined)?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Where to look when a step fails: the control-plane pods' and the worker's state. */
  const report = async (): Promise<string> => {
    const pods = await cluster.kubectl(['get', 'pods', '-A', '-o', 'wide']);
    const agent = await cluster.kubectl([
      'logs',
      '-n',
      'kube-system',
      'daemonset/konnectivity-agent',
      '--tail=30',
    ]);
    const apiserver = (await cluster.controlPlanePods()).find((p) =>
      p.metadata?.name?.startsWith(`${NAME}-apiserver`),
    );
    const server = await cluster.infra.api
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .readNamespacedPodLog({
        name: apiserver?.metadata?.name ?? '',
        namespace: NAMESPACE,
        container: 'konnectivity-server',
        tailLines: 30,
      })
      .catch((error: unknown) => String(error));
    return `${pods.stdout}${pods.stderr}\n--- agent ---\n${agent.stdout}${agent.stderr}\n--- proxy server ---\n${server}`;
  };

  /** `create` again for the same control plane, with these flags added (the spec follows the flags). */
  const recreate = (flags: readonly string[]) =>
    cluster.cli(
      [
        ...['create', NAME, '-n', NAMESPACE, '--host', cluster.host, ...flags],
        ...['--api-node-port', '30443', '--join-node-port', '30843'],
        ...['--kubeconfig', cluster.infraKubeconfigPath, '--wait', '4m'],
      ],
      360_000,
    );

  /** The apiserver pods not being deleted. */
  const apiservers = async () =>
    (await cluster.controlPlanePods()).filter(
      (p) =>
        p.metadata?.name?.startsWith(`${NAME}-apiserver`) === true &&
        p.metadata.deletionTimestamp === undefined,
    );

  /**
   * Whether there are two apiserver pods (none of them `gone`) and each one's proxy server has a
   * tunnel from the agent: its /readyz says ok only then.
   */
  const bothServersHaveTheAgent = async (gone?: string): Promise<true | undefined> => {
    const pods = await apiservers();
    if (pods.length !== 2 || pods.some((p) => p.metadata?.name === gone)) return undefined;
    const ready = await Promise.all(
      pods.map((p) =>
        cluster.infra.node.exec('curl', [
          '-s',
          '--max-time',
          '3',
          `http://${p.status?.podIP ?? ''}:8134/readyz`,
        ]),
      ),
    );
    return ready.every((r) => r.stdout.trim() === 'ok') ? true : undefined;
  };

  it(
    '1. a control plane with konnectivity, and a worker behind NAT that joins through it',
    { timeout: 900_000 },
    async () => {
      cluster = await startHostedOnInfra({ name: NAME, namespace: NAMESPACE });
      assert.match(cluster.createOutput, /readyz: ok after/);
      const minted = await cluster.cli([
        ...['token', 'create', '--server', cluster.joinUrl, '--kubeconfig', cluster.kubeconfigPath],
        ...['--uses', '1', '--ttl', '15m', '--output', 'json'],
      ]);
      assert.equal(minted.exitCode, 0, `${minted.stdout}\n${minted.stderr}`);
      const { token } = JSON.parse(minted.stdout) as { token: string };
      worker = await cluster.startWorker({
        index: 1,
        hostname: WORKER,
        dir,
        extraImages: [PROBE_IMAGE, SHELL_IMAGE],
        behindNat: true,
      });
      const joined = await worker.agent(joinCommandArgs(cluster, token, '4m'), 300_000);
      assert.equal(joined.exitCode, 0, `${joined.stdout}\n${joined.stderr}`);
      // The second forwarder: VIP:8132 to the proxy servers' NodePort.
      const listening = await worker.host.exec('ss', ['-Hltn', 'src 10.199.199.199:8132']);
      assert.match(listening.stdout, /10\.199\.199\.199:8132/, listening.stderr);
      await eventually(`Node ${WORKER} Ready`, 240_000, async () => {
        const nodes = await cluster.kubectl(['get', 'node', WORKER, '--no-headers']);
        return /\sReady\s/.test(nodes.stdout) ? true : undefined;
      });
    },
  );

  it('2. the infra side cannot open a connection to the worker; the worker reaches the NodePort host', async () => {
    const routes = await cluster.infra.node.exec('ip', ['route']);
    const rules = await cluster.cpNetns.run('iptables', ['-w', '-S', 'FORWARD']);
    const nat = await cluster.cpNetns.run('iptables', ['-w', '-t', 'nat', '-S', 'POSTROUTING']);
    console.log(`# infra node's routes:\n${routes.stdout.trimEnd().replace(/^/gm, '#   ')}`);
    console.log(
      `# the gateway's rules:\n${`${rules.stdout.trimEnd()}\n${nat.stdout}`.trimEnd().replace(/^/gm, '#   ')}`,
    );
    assert.match(rules.stdout, new RegExp(`-s 198\\.18\\.0\\.0/24 -d 198\\.18\\.1\\.0/24 .*NEW -j DROP`));
    // From the infra node (where the apiserver pod runs) the kubelet's port is unreachable…
    const dial = await cluster.infra.node.exec('timeout', [
      '5',
      'bash',
      '-c',
      `echo > /dev/tcp/${WORKER_ADDRESS}/10250`,
    ]);
    assert.notEqual(dial.exitCode, 0, 'the infra node opened a connection to the kubelet');
    // …while the worker reaches the apiserver's NodePort (its forwarder does, all the time).
    const out = await worker.host.exec('timeout', [
      '5',
      'bash',
      '-c',
      `echo > /dev/tcp/${cluster.host}/30443`,
    ]);
    assert.equal(out.exitCode, 0, out.stderr);
  });

  it(
    '3. the konnectivity agent runs on the worker and a pod of each test image is Running',
    { timeout: 300_000 },
    async () => {
      const manifest = {
        apiVersion: 'v1',
        kind: 'List',
        items: [
          shellPod('shell', 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done'),
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'web', namespace: 'default' },
            spec: { containers: [{ name: 'web', image: PROBE_IMAGE, args: ['serve', '--port', '8080'] }] },
          },
        ],
      };
      const applied = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
      assert.equal(applied.exitCode, 0, applied.stderr);
      const waited = await cluster.kubectl(
        ['wait', '--for=condition=Ready', 'pod/shell', 'pod/web', '--timeout=180s'],
        { timeoutMs: 200_000 },
      );
      assert.equal(waited.exitCode, 0, `${waited.stdout}${waited.stderr}\n${await report()}`);
      const agents = await cluster.kubectl([
        ...['get', 'pods', '-n', 'kube-system', '-l', 'k8s-app=konnectivity-agent'],
        ...['-o', 'jsonpath={.items[*].spec.nodeName} {.items[*].status.phase}'],
      ]);
      assert.equal(agents.stdout.trim(), `${WORKER} Running`, await report());
      // The proxy server's metrics (its health port, reachable from the node): one agent tunnel.
      const [apiserver] = await apiservers();
      const metrics = await cluster.infra.node.exec('curl', [
        ...['-s', '--max-time', '5', `http://${apiserver?.status?.podIP ?? ''}:8134/metrics`],
      ]);
      assert.match(
        metrics.stdout,
        /^konnectivity_network_proxy_server_ready_backend_connections 1$/m,
        metrics.stdout,
      );
    },
  );

  it('4. kubectl logs, and logs -f streaming for 10 s', { timeout: 120_000 }, async () => {
    const logs = await eventually('kubectl logs through konnectivity', 60_000, async () => {
      const answer = await cluster.kubectl(['logs', 'pod/web']);
      return answer.exitCode === 0 ? answer : undefined;
    }).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\n${await report()}`);
    });
    assert.match(logs.stdout, /serving hostname=web on :8080/);

    const follow = cluster.kubectlCommand(['logs', '-f', 'pod/shell', '--since=1s']);
    const child = execa(follow.command, follow.args, { reject: false, timeout: 10_000 });
    const followed = await child;
    assert.ok(followed.timedOut, `logs -f ended by itself: ${followed.stderr}`);
    const ticks = [...followed.stdout.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(ticks.length >= 7, `ticks streamed in 10 s: ${ticks.join(' ')}`);
    assert.ok(
      ticks.every((tick, i) => i === 0 || tick === (ticks[i - 1] ?? 0) + 1),
      `consecutive: ${ticks.join(' ')}`,
    );
  });

  it("5. kubectl exec -- sh -c 'echo ok'", async () => {
    const exec = await cluster.kubectl(['exec', 'shell', '--', 'sh', '-c', 'echo ok']);
    assert.equal(exec.exitCode, 0, exec.stderr);
    assert.equal(exec.stdout, 'ok\n');
  });

  it('6. kubectl port-forward to the pod, and an HTTP request through it', { timeout: 60_000 }, async () => {
    const forward = cluster.kubectlCommand(['port-forward', 'pod/web', '18080:8080']);
    const child = execa(forward.command, forward.args, { reject: false });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    try {
      await eventually('port-forward to listen', 20_000, () =>
        Promise.resolve(/Forwarding from 127\.0\.0\.1:18080/.test(output) ? true : undefined),
      );
      const got = await cluster.cpNetns.run('curl', ['-sS', '--max-time', '10', 'http://127.0.0.1:18080/']);
      assert.equal(got.exitCode, 0, got.stderr);
      assert.equal(got.stdout.trim(), 'hostname=web');
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });

  it('7. kubectl cp into the pod and back', { timeout: 60_000 }, async () => {
    const local = join(dir, 'payload.txt');
    const content = `through konnectivity ${'x'.repeat(64 * 1024)}\n`;
    await writeFile(local, content);
    const up = await cluster.kubectl(['cp', local, 'default/shell:/tmp/payload.txt']);
    assert.equal(up.exitCode, 0, `${up.stdout}${up.stderr}`);
    const size = await cluster.kubectl(['exec', 'shell', '--', 'sh', '-c', 'wc -c < /tmp/payload.txt']);
    assert.equal(size.stdout.trim(), String(Buffer.byteLength(content)));
    const back = join(dir, 'back.txt');
    const down = await cluster.kubectl(['cp', 'default/shell:/tmp/payload.txt', back]);
    assert.equal(down.exitCode, 0, `${down.stdout}${down.stderr}`);
    assert.equal(await readFile(back, 'utf8'), content);
  });

  it(
    '8. two apiservers: the agent keeps a tunnel to each proxy server; one killed, logs keep working',
    { timeout: 600_000 },
    async () => {
      const recreated = await recreate(['--apiserver-replicas', '2']);
      assert.equal(recreated.exitCode, 0, `${recreated.stdout}\n${recreated.stderr}`);
      // Each proxy server answers /readyz ok only once an agent has a tunnel to it; the agent counts
      // the servers' Leases and reconnects through the Service until it holds both.
      const start = Date.now();
      await eventually('both proxy servers to have the agent', 180_000, () =>
        bothServersHaveTheAgent(),
      ).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await report()}`);
      });
      const leases = await cluster.kubectl([
        ...['get', 'leases', '-n', 'kube-system', '-l', 'k8s-app=konnectivity-server', '-o', 'name'],
      ]);
      assert.equal(leases.stdout.trim().split('\n').length, 2, leases.stdout);
      // The agent's own count, from its metrics (127.0.0.1:8093 on the node, hostNetwork).
      const metrics = await worker.host.exec('curl', [
        '-s',
        '--max-time',
        '5',
        'http://127.0.0.1:8093/metrics',
      ]);
      assert.match(
        metrics.stdout,
        /^konnectivity_network_proxy_agent_open_server_connections 2$/m,
        metrics.stdout,
      );
      assert.match(metrics.stdout, /^konnectivity_network_proxy_agent_known_server_count 2$/m);
      console.log(
        `# 2 apiservers: the agent holds a tunnel to both proxy servers ${Date.now() - start} ms after create`,
      );

      const [victim] = await apiservers();
      assert.ok(victim?.metadata?.name !== undefined);
      const killedAt = Date.now();
      const infraCore = cluster.infra.api.kubeConfig().makeApiClient(CoreV1Api);
      await infraCore.deleteNamespacedPod({
        name: victim.metadata.name,
        namespace: NAMESPACE,
        gracePeriodSeconds: 0,
      });
      // From the kill on, kubectl logs every 500 ms: when do answers come back, and stay?
      const outcomes: { at: number; ok: boolean }[] = [];
      while (Date.now() - killedAt < 60_000) {
        const logs = await cluster.kubectl(['logs', 'pod/web', '--request-timeout=5s'], {
          timeoutMs: 10_000,
        });
        outcomes.push({ at: Date.now() - killedAt, ok: logs.exitCode === 0 && /serving/.test(logs.stdout) });
        if (outcomes.length >= 5 && outcomes.slice(-5).every((o) => o.ok)) break;
        await sleep(500);
      }
      const failures = outcomes.filter((o) => !o.ok);
      console.log(
        `# one of 2 apiservers killed: kubectl logs ${failures.length === 0 ? 'never failed' : `failed last ${String(failures.at(-1)?.at)} ms after the kill`}; ${failures.length} of ${outcomes.length} calls failed`,
      );
      assert.ok(
        outcomes.slice(-5).every((o) => o.ok),
        `logs did not recover: ${JSON.stringify(outcomes)}`,
      );
      // The Deployment replaces the pod; the agent finds the new server by its Lease and connects.
      await eventually('the agent at the replacement proxy server too', 180_000, () =>
        bothServersHaveTheAgent(victim.metadata?.name),
      );
      console.log(`# the replacement proxy server has the agent ${Date.now() - killedAt} ms after the kill`);
    },
  );

  it(
    '9. a node that dies silently: the proxy servers drop its tunnels and no dial stays pending; back, it reconnects',
    { timeout: 420_000 },
    async () => {
      // Every packet between the worker and the infra side dropped, both ways: to the servers the
      // worker's tunnels still look open, as after a power cut or a NAT mapping gone.
      const block = [
        ['-s', '198.18.1.0/24', '-j', 'DROP'],
        ['-d', '198.18.1.0/24', '-j', 'DROP'],
      ];
      const servers = await apiservers();
      assert.equal(servers.length, 2);
      const serverMetrics = async () =>
        Promise.all(
          servers.map(async (p) => {
            const text = (
              await cluster.infra.node.exec('curl', [
                ...['-s', '--max-time', '3', `http://${p.status?.podIP ?? ''}:8134/metrics`],
              ])
            ).stdout;
            const gauge = (name: string): number | undefined => {
              const line = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
              return line === null ? undefined : Number(line[1]);
            };
            return {
              backends: gauge('konnectivity_network_proxy_server_ready_backend_connections'),
              pending: gauge('konnectivity_network_proxy_server_pending_backend_dials'),
            };
          }),
        );
      for (const rule of block) {
        const added = await cluster.cpNetns.run('iptables', ['-w', '-I', 'FORWARD', ...rule]);
        assert.equal(added.exitCode, 0, added.stderr);
      }
      const diedAt = Date.now();
      let unblocked = false;
      const unblock = async (): Promise<void> => {
        if (unblocked) return;
        unblocked = true;
        for (const rule of block) await cluster.cpNetns.run('iptables', ['-w', '-D', 'FORWARD', ...rule]);
      };
      // A dial with no client-side timeout at all: it must end by itself, with the server's error.
      const unbounded = cluster.kubectl(['logs', 'pod/web', '--request-timeout=0'], { timeoutMs: 200_000 });
      try {
        // Dials for the dead node while its tunnels still look open: they fail, bounded.
        const dials = await Promise.all(
          [1, 2, 3].map(() =>
            cluster.kubectl(['logs', 'pod/web', '--request-timeout=20s'], { timeoutMs: 40_000 }),
          ),
        );
        assert.ok(
          dials.every((d) => d.exitCode !== 0),
          `kubectl logs answered for a dead node: ${JSON.stringify(dials.map((d) => d.stdout))}`,
        );
        const dropped = await eventually(
          "both proxy servers to drop the dead node's tunnel",
          120_000,
          async () => {
            const now = await serverMetrics();
            return now.every((m) => m.backends === 0) ? now : undefined;
          },
        );
        const droppedMs = Date.now() - diedAt;
        // Upstream leaves a dial pending until its frontend gives up (apiserver-network-proxy #126);
        // the apiserver's own dial timeout must end every one of them: none may pile up.
        await eventually('no dial pending at either proxy server', 120_000, async () => {
          const now = await serverMetrics();
          return now.every((m) => m.pending === 0) ? true : undefined;
        }).catch(async (error: unknown) => {
          throw new Error(`${String(error)}: ${JSON.stringify(await serverMetrics())}`);
        });
        const noPendingMs = Date.now() - diedAt;
        const ended = await unbounded;
        const endedMs = Date.now() - diedAt;
        assert.notEqual(ended.exitCode, 0, ended.stdout);
        assert.match(
          ended.stderr,
          /error from server|no agent|dial|timeout|closed/i,
          'not ended by the server',
        );
        console.log(
          `# kubectl logs with --request-timeout=0 for the dead node ended by itself after ${endedMs} ms: ${ended.stderr.trim()}`,
        );
        console.log(
          `# a silently dead node: both proxy servers dropped its tunnel ${droppedMs} ms after its packets stopped (pending dials then: ${JSON.stringify(dropped.map((m) => m.pending))}); none pending ${noPendingMs} ms after`,
        );
      } finally {
        await unblock();
      }
      const backAt = Date.now();
      await eventually('kubectl logs once the node is back', 240_000, async () => {
        const logs = await cluster.kubectl(['logs', 'pod/web', '--request-timeout=5s'], {
          timeoutMs: 10_000,
        });
        return logs.exitCode === 0 && /serving/.test(logs.stdout) ? true : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await report()}`);
      });
      console.log(
        `# the node back: kubectl logs works again ${Date.now() - backAt} ms later (the agent reconnected)`,
      );
    },
  );

  it(
    '10. without konnectivity the same kubectl logs fails: the worker cannot be dialled',
    { timeout: 420_000 },
    async () => {
      const recreated = await recreate(['--konnectivity=false']);
      assert.equal(recreated.exitCode, 0, `${recreated.stdout}\n${recreated.stderr}`);
      // create waits for the new apiserver pod Ready; the old ones may still be terminating, and
      // kubectl must meet the new one: wait until no pod with a proxy server is left at all.
      await eventually('no apiserver pod with a proxy server, terminating or not', 180_000, async () => {
        const pods = (await cluster.controlPlanePods()).filter(
          (p) => p.metadata?.name?.startsWith(`${NAME}-apiserver`) === true,
        );
        return pods.length > 0 &&
          pods.every((p) => (p.spec?.containers ?? []).every((c) => c.name !== 'konnectivity-server'))
          ? true
          : undefined;
      });
      await eventually('the API through the NodePort', 60_000, async () =>
        (await cluster.kubectl(['get', '--raw', '/readyz'])).exitCode === 0 ? true : undefined,
      );
      const started = Date.now();
      const logs = await cluster.kubectl(['logs', 'pod/web', '--request-timeout=40s'], { timeoutMs: 60_000 });
      assert.notEqual(logs.exitCode, 0, `kubectl logs answered without konnectivity: ${logs.stdout}`);
      assert.match(logs.stderr, /198\.18\.1\.2:10250|timeout|dial/i);
      console.log(
        `# kubectl logs without konnectivity: failed after ${Date.now() - started} ms: ${logs.stderr.trim()}`,
      );
    },
  );
});
