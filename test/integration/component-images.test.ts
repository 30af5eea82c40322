// Every image the renderers name, as `npm run build:images` leaves it: the list comes from the
// rendered control plane and hosted add-ons, not from the build script. Each archive is read by
// skopeo, unpacked, and each container's rendered command runs inside that root by chroot as the
// rendered user (else the image's): long-running ones answer their version flag, init containers
// run their rendered args against the directories their volumes mount, and kube-proxy and flanneld
// find the iptables and conntrack they call. Konnectivity's images, until a renderer names them,
// are checked the same way with their images' entrypoints and users. And the images the end-to-end
// tests run, which no renderer names: the probe's /probe runs in its root by chroot as its user,
// with what the kubelet mounts (the pod's /etc/hosts, /dev/termination-log, the service account),
// against real servers; the shell's sh and tar run the commands kubectl exec and kubectl cp send.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubernetesObject, V1ConfigMap, V1Container, V1PodSpec } from '@kubernetes/client-node';
import {
  buildControlPlaneSpec,
  completeControlPlanePki,
  KONNECTIVITY_IMAGES,
  renderControlPlane,
  renderHostedAssets,
} from '@k8s-on-k8s/server';
import { createCertificateAuthority, issueCertificate } from '@k8s-on-k8s/shared';
import {
  CHROOT,
  chrootArgs,
  imageArchivePath,
  PROBE_IMAGE,
  readImageIndex,
  SHELL_IMAGE,
  unpackImageArchive,
  type UnpackedImage,
} from '../harness/index.js';

interface RenderedContainer {
  /** `Kind/name container` for test names. */
  readonly where: string;
  readonly container: V1Container;
  readonly pod: V1PodSpec;
  readonly init: boolean;
  /** `uid:gid` if the pod or container sets runAsUser. */
  readonly user: string | undefined;
}

/** How each binary prints its version, and what that output must say for image tag `tag`. */
const VERSION_FLAGS: Record<string, { flag: string; says: (tag: string) => string }> = {
  etcd: { flag: '--version', says: (tag) => `etcd Version: ${tag.replace(/-\d+$/, '')}` },
  'kube-apiserver': { flag: '--version', says: (tag) => `Kubernetes ${tag}` },
  'kube-controller-manager': { flag: '--version', says: (tag) => `Kubernetes ${tag}` },
  'kube-scheduler': { flag: '--version', says: (tag) => `Kubernetes ${tag}` },
  'kube-proxy': { flag: '--version', says: (tag) => `Kubernetes ${tag}` },
  coredns: { flag: '-version', says: (tag) => `CoreDNS-${tag.replace(/^v/, '')}` },
  flanneld: { flag: '--version', says: (tag) => tag },
  cp: { flag: '--version', says: () => 'GNU coreutils' },
  // Neither has a version flag (upstream sets no version variable): their help names them.
  'proxy-server': { flag: '--help', says: () => 'A gRPC proxy server' },
  'proxy-agent': { flag: '--help', says: () => 'A gRPC agent' },
  // Its own image test (join-server-image.test.ts) runs it in full.
  'k8s-join-server': { flag: '--help', says: () => 'Usage: k8s-join-server' },
};
/** The programs that drive iptables (kube-proxy's mode iptables, flanneld's --ip-masq) and what they call. */
const IPTABLES_USERS: Record<string, string[][]> = {
  'kube-proxy': [
    ['iptables', '--version'],
    ['ip6tables', '--version'],
    ['iptables-save', '--version'],
    ['iptables-restore', '--version'],
    ['iptables-legacy', '--version'],
    // -h loads each named match and target from the xtables plugins and touches no table.
    [
      'iptables',
      '-m',
      'comment',
      '-m',
      'conntrack',
      '-m',
      'statistic',
      '-m',
      'mark',
      '-m',
      'addrtype',
      '-j',
      'MASQUERADE',
      '-h',
    ],
    ['conntrack', '--version'],
  ],
  flanneld: [
    ['iptables', '--version'],
    ['ip6tables', '--version'],
    ['iptables', '-m', 'comment', '-j', 'MASQUERADE', '-h'],
  ],
};

/** Every container of every pod template the renderers produce for a spec with flannel. */
async function renderContainers(): Promise<{
  containers: RenderedContainer[];
  configMaps: Map<string, Record<string, string>>;
}> {
  const spec = buildControlPlaneSpec({
    name: 'images',
    namespace: 'infra',
    host: '127.0.0.1',
    nodePorts: { api: 30443, join: 30444, konnectivity: 30132 },
    cni: 'flannel',
  });
  const { pki } = await completeControlPlanePki(spec, {});
  const objects: KubernetesObject[] = [...renderControlPlane(spec, pki), ...renderHostedAssets(spec)];
  const containers = objects.flatMap((object) => {
    const pod = (object as { spec?: { template?: { spec?: V1PodSpec } } }).spec?.template?.spec;
    if (pod === undefined) return [];
    return [
      ...(pod.initContainers ?? []).map((container) => ({ container, init: true })),
      ...pod.containers.map((container) => ({ container, init: false })),
    ].map(({ container, init }): RenderedContainer => {
      const uid = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
      const gid = container.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup ?? uid;
      return {
        where: `${object.kind ?? ''}/${object.metadata?.name ?? ''} ${container.name}`,
        container,
        pod,
        init,
        user: uid === undefined ? undefined : `${uid}:${gid ?? uid}`,
      };
    });
  });
  const configMaps = new Map(
    objects.flatMap((o) =>
      o.kind === 'ConfigMap' ? [[o.metadata?.name ?? '', (o as V1ConfigMap).data ?? {}]] : [],
    ),
  );
  return { containers, configMaps };
}

/** Runs `argv` in the image's root as `user`; returns its output, failing with both streams unless it exits 0. */
function runInImage(
  unpacked: UnpackedImage,
  user: string,
  argv: readonly string[],
  env = {},
  input?: Buffer,
): string {
  const result = spawnSync(CHROOT, chrootArgs(unpacked.rootfs, user, argv), {
    encoding: 'utf8',
    env: { ...unpacked.env, ...env },
    input,
    timeout: 30_000,
  });
  assert.equal(
    result.status,
    0,
    `${argv.join(' ')} as ${user}: ${result.error?.message ?? ''}${result.stderr}${result.stdout}`,
  );
  return result.stdout + result.stderr;
}

/**
 * Unpacks `archive` into a temp dir before the tests of the suite this is called in, hands it to
 * `use` there, and removes the dir after them.
 */
function unpackAroundTests(archive: string, prefix: string, use: (unpacked: UnpackedImage) => void): void {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    use(unpackImageArchive(archive, dir));
  });
  after(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });
}

/** Writes what the kubelet would mount for the container: configMap files, and empty dirs for the rest. */
function mountVolumes(
  rootfs: string,
  rendered: RenderedContainer,
  configMaps: Map<string, Record<string, string>>,
): void {
  for (const mount of rendered.container.volumeMounts ?? []) {
    const dir = join(rootfs, mount.mountPath);
    mkdirSync(dir, { recursive: true });
    const configMap = rendered.pod.volumes?.find((v) => v.name === mount.name)?.configMap?.name;
    for (const [key, value] of Object.entries(configMaps.get(configMap ?? '') ?? {})) {
      writeFileSync(join(dir, key), value);
    }
  }
}

const { containers, configMaps } = await renderContainers();
const renderedImages = [...new Set(containers.map((c) => c.container.image ?? ''))];
/** Konnectivity's images until a renderer names them: each runs as its image's user, with its entrypoint. */
const unrendered: string[] = Object.values(KONNECTIVITY_IMAGES).filter(
  (image) => !renderedImages.includes(image),
);
const images = [...renderedImages, ...unrendered];

describe(
  'component images (npm run build:images)',
  {
    skip: images.every((image) => existsSync(imageArchivePath(image)))
      ? false
      : `${images.filter((image) => !existsSync(imageArchivePath(image))).join(', ')} not built: run \`npm run build:images\``,
  },
  () => {
    it('the renderers name the control plane, kube-proxy, CoreDNS and flannel images', () => {
      for (const repository of [
        'registry.k8s.io/etcd',
        'registry.k8s.io/kube-apiserver',
        'registry.k8s.io/kube-controller-manager',
        'registry.k8s.io/kube-scheduler',
        'registry.k8s.io/kube-proxy',
        'registry.k8s.io/coredns/coredns',
        'ghcr.io/flannel-io/flannel',
        'ghcr.io/flannel-io/flannel-cni-plugin',
      ]) {
        assert.ok(
          renderedImages.some((image) => image.startsWith(`${repository}:`)),
          `${repository} in ${renderedImages.join(' ')}`,
        );
      }
    });

    for (const image of images) {
      describe(image, () => {
        const archive = imageArchivePath(image);
        const tag = image.slice(image.lastIndexOf(':') + 1);
        let unpacked: UnpackedImage;
        unpackAroundTests(archive, 'component-image-', (image) => (unpacked = image));

        it('carries the rendered name for ctr import and its tag for skopeo', () => {
          const [entry, ...more] = readImageIndex(archive);
          assert.equal(more.length, 0);
          assert.equal(entry?.annotations?.['io.containerd.image.name'], image);
          assert.equal(entry.annotations['org.opencontainers.image.ref.name'], tag);
          const inspected = JSON.parse(
            execFileSync('skopeo', ['inspect', `oci-archive:${archive}:${tag}`], { encoding: 'utf8' }),
          ) as { Digest: string };
          assert.equal(inspected.Digest, entry.digest);
          assert.equal(
            readFileSync(join(unpacked.rootfs, 'etc/passwd'), 'utf8').includes('nonroot:x:65532:65532:'),
            true,
          );
        });

        if (unrendered.includes(image)) {
          const name = basename(image.slice(0, image.lastIndexOf(':')));
          it(`runs /${name} as nonroot, as upstream's image does, and it answers inside the image`, () => {
            const { config } = unpacked.image;
            assert.deepEqual(config.Entrypoint, [`/${name}`]);
            assert.equal(config.User, '65532:65532');
            assert.equal(config.Labels?.['org.opencontainers.image.title'], name);
            assert.equal(config.Labels['org.opencontainers.image.version'], tag);
            const version = VERSION_FLAGS[name];
            assert.ok(version, `the test knows how ${name} answers`);
            const output = runInImage(unpacked, config.User, [`/${name}`, version.flag]);
            assert.ok(output.includes(version.says(tag)), `/${name} ${version.flag}: ${output}`);
          });
        }

        for (const rendered of containers.filter((c) => c.container.image === image)) {
          const argv = () => rendered.container.command ?? unpacked.image.config.Entrypoint ?? [];
          const user = () => rendered.user ?? unpacked.image.config.User ?? '0:0';

          it(`${rendered.where}: the image runs as the rendered user`, () => {
            if (rendered.user !== undefined) assert.equal(unpacked.image.config.User, rendered.user);
            assert.ok(argv().length > 0, 'a command or an entrypoint');
          });

          it(`${rendered.where}: its command answers its version flag inside the image`, () => {
            const [command = ''] = argv();
            const version = VERSION_FLAGS[basename(command)];
            assert.ok(version, `the test knows how ${command} prints its version`);
            const output = runInImage(unpacked, user(), [command, version.flag]);
            assert.ok(
              output.includes(version.says(tag)),
              `${command} ${version.flag} says ${version.says(tag)}: ${output}`,
            );
          });

          const adds = rendered.container.securityContext?.capabilities?.add ?? [];
          if (adds.includes('NET_BIND_SERVICE')) {
            it(`${rendered.where}: a non-root user can use the NET_BIND_SERVICE the container keeps`, (t) => {
              if (user().startsWith('0:')) {
                t.skip('runs as root, which holds the capability without a file capability');
                return;
              }
              // With allowPrivilegeEscalation false and no ambient capabilities, a non-root process gets
              // a capability only from its file's, as upstream's image sets (setcap).
              const [command = ''] = argv();
              const path = command.startsWith('/')
                ? command
                : ((unpacked.env.PATH ?? '')
                    .split(':')
                    .map((dir) => join(dir, command))
                    .find((candidate) => existsSync(join(unpacked.rootfs, candidate))) ?? command);
              const caps = execFileSync('getcap', [join(unpacked.rootfs, path)], { encoding: 'utf8' });
              assert.match(caps, /cap_net_bind_service[=+]e?p/, `getcap ${path}: ${caps}`);
            });
          }

          if (rendered.init) {
            it(`${rendered.where}: its command and args run against its volume mounts`, () => {
              mountVolumes(unpacked.rootfs, rendered, configMaps);
              runInImage(unpacked, user(), [...argv(), ...(rendered.container.args ?? [])]);
              const target = rendered.container.args?.at(-1) ?? '';
              const source = rendered.container.args?.at(-2) ?? '';
              assert.deepEqual(
                readFileSync(join(unpacked.rootfs, target)),
                readFileSync(join(unpacked.rootfs, source)),
              );
              if (dirname(target) === '/opt/cni/bin') {
                // What the kubelet's CNI calls first: the plugin says which CNI versions it speaks.
                const answer = runInImage(unpacked, user(), [target], { CNI_COMMAND: 'VERSION' });
                assert.match(answer, /"supportedVersions"/);
              }
            });
          }

          for (const call of IPTABLES_USERS[basename(rendered.container.command?.[0] ?? '')] ?? []) {
            it(`${rendered.where}: ${call.join(' ')} works inside the image`, () => {
              const output = runInImage(unpacked, user(), call);
              if (call[0] === 'iptables' && call[1] === '--version') assert.match(output, /\(nf_tables\)/);
            });
          }
        }
      });
    }
  },
);

/** What a probe run left: its exit code, its output, and the termination message the kubelet would read. */
interface ProbeRun {
  readonly status: number | null;
  readonly output: string;
  readonly message: string;
}

const probeArchive = imageArchivePath(PROBE_IMAGE);

describe(
  `the probe image ${PROBE_IMAGE} (npm run build:images)`,
  { skip: existsSync(probeArchive) ? false : `${probeArchive} not built: run \`npm run build:images\`` },
  () => {
    const token = 'probe-test-token';
    let unpacked: UnpackedImage;
    let messagePath = '';

    /** Runs /probe in the image as its user; asynchronous, as the servers it calls are in this process. */
    function runProbe(args: readonly string[], env: Record<string, string> = {}): Promise<ProbeRun> {
      writeFileSync(messagePath, '');
      const argv = chrootArgs(unpacked.rootfs, unpacked.image.config.User ?? '', ['/probe', ...args]);
      return new Promise((resolve) => {
        const child = execFile(
          CHROOT,
          argv,
          { encoding: 'utf8', env, timeout: 30_000 },
          (_, stdout, stderr) => {
            resolve({
              status: child.exitCode,
              output: stdout + stderr,
              message: readFileSync(messagePath, 'utf8'),
            });
          },
        );
      });
    }

    unpackAroundTests(probeArchive, 'probe-image-', (image) => {
      unpacked = image;
      const { rootfs } = unpacked;
      writeFileSync(join(rootfs, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n');
      // The kubelet mounts an empty file there that the container's user may write.
      mkdirSync(join(rootfs, 'dev'));
      messagePath = join(rootfs, 'dev/termination-log');
      writeFileSync(messagePath, '');
      chownSync(messagePath, 65532, 65532);
      mkdirSync(join(rootfs, 'var/run/secrets/kubernetes.io/serviceaccount'), { recursive: true });
      writeFileSync(join(rootfs, 'var/run/secrets/kubernetes.io/serviceaccount/token'), `${token}\n`);
    });

    it('is named for ctr import, runs /probe as nonroot and carries its labels', () => {
      const [entry] = readImageIndex(probeArchive);
      assert.equal(entry?.annotations?.['io.containerd.image.name'], PROBE_IMAGE);
      const { config } = unpacked.image;
      assert.deepEqual(config.Entrypoint, ['/probe']);
      assert.equal(config.User, '65532:65532');
      assert.equal(config.Labels?.['org.opencontainers.image.title'], 'probe');
      assert.equal(config.Labels['org.opencontainers.image.version'], PROBE_IMAGE.split(':').at(-1));
      assert.equal(config.Labels['org.opencontainers.image.licenses'], 'Apache-2.0');
      assert.match(config.Labels['org.opencontainers.image.source'] ?? '', /^https:\/\//);
    });

    it('resolves localhost from the /etc/hosts the kubelet writes, and fails on an address it lacks', async () => {
      const found = await runProbe(['resolve', 'localhost', '--timeout', '2s']);
      assert.equal(found.status, 0, found.output);
      assert.match(found.message, /^ok resolve localhost -> .*\b127\.0\.0\.1\b.*\n$/);
      assert.equal(found.output, found.message);

      const missing = await runProbe(['resolve', 'localhost', '--expect-ip', '10.0.0.1', '--timeout', '1s']);
      assert.equal(missing.status, 1, missing.output);
      assert.match(missing.message, /^fail resolve localhost: 10\.0\.0\.1 is not among /);
    });

    it('gets a URL, printing its body, and fails when the body lacks what is expected', async () => {
      const server = createServer((_, res) => res.end('x marks the spot\n')).listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
        const got = await runProbe(['get', url, '--expect', 'x']);
        assert.equal(got.status, 0, got.output);
        assert.equal(got.output, `x marks the spot\n${got.message}`);
        assert.equal(got.message, `ok get ${url} -> 200, 17 bytes\n`);

        const lacking = await runProbe(['get', url, '--expect', 'treasure', '--timeout', '1s']);
        assert.equal(lacking.status, 1, lacking.output);
        assert.match(lacking.message, /^fail get .*: the body does not contain "treasure"/);
      } finally {
        server.close();
      }
    });

    it("reads /version as an in-cluster client: the service account's token and CA, --host for TLS", async () => {
      const ca = await createCertificateAuthority('probe-test-ca');
      const cert = await issueCertificate(ca, {
        commonName: 'kube-apiserver',
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        usage: 'server',
      });
      writeFileSync(join(unpacked.rootfs, 'var/run/secrets/kubernetes.io/serviceaccount/ca.crt'), ca.certPem);
      const authorizations: (string | undefined)[] = [];
      const api = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
        authorizations.push(req.headers.authorization);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ major: '1', gitVersion: 'v1.37.2-probe-test' }));
      }).listen(0, '127.0.0.1');
      await once(api, 'listening');
      try {
        const port = String((api.address() as AddressInfo).port);
        const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port };
        const direct = await runProbe(['api-version', '--timeout', '5s'], env);
        assert.equal(direct.status, 0, direct.output);
        assert.equal(
          direct.message,
          `ok api-version https://127.0.0.1:${port}/version -> v1.37.2-probe-test\n`,
        );
        const named = await runProbe(['api-version', '--host', 'localhost', '--timeout', '5s'], env);
        assert.equal(named.status, 0, named.output);
        assert.match(
          named.message,
          /^ok api-version https:\/\/localhost:\d+\/version -> v1\.37\.2-probe-test\n$/,
        );
        assert.deepEqual(authorizations, [`Bearer ${token}`, `Bearer ${token}`]);
        assert.ok(!named.output.includes(token), 'the token is never printed');
      } finally {
        api.close();
      }
    });

    it('answers a usage error with exit 2 and the usage', async () => {
      const run = await runProbe(['get']);
      assert.equal(run.status, 2, run.output);
      assert.match(run.output, /^usage:\n {2}probe resolve NAME/m);
      assert.equal(run.message, 'fail usage: get takes 1 argument(s), got []\n');
    });
  },
);

const shellArchive = imageArchivePath(SHELL_IMAGE);

describe(
  `the shell image ${SHELL_IMAGE} (npm run build:images)`,
  { skip: existsSync(shellArchive) ? false : `${shellArchive} not built: run \`npm run build:images\`` },
  () => {
    let unpacked: UnpackedImage;
    unpackAroundTests(shellArchive, 'shell-image-', (image) => (unpacked = image));
    const user = '65532:65532';

    it("is named for ctr import, sleeps as nonroot until exec'd into and carries its labels", () => {
      const [entry] = readImageIndex(shellArchive);
      assert.equal(entry?.annotations?.['io.containerd.image.name'], SHELL_IMAGE);
      const { config } = unpacked.image;
      assert.equal(config.Entrypoint, undefined);
      assert.deepEqual(config.Cmd, ['/bin/sleep', 'infinity']);
      assert.equal(config.User, user);
      assert.equal(config.Labels?.['org.opencontainers.image.title'], 'shell');
      assert.match(config.Labels['io.k8s-on-k8s.image.debian-packages'] ?? '', /^busybox-static=\S+$/);
      // Its Cmd runs: sleep accepts "infinity" and is still sleeping when the test stops it.
      const sleeping = spawnSync(CHROOT, chrootArgs(unpacked.rootfs, user, config.Cmd ?? []), {
        env: unpacked.env,
        timeout: 1_000,
      });
      assert.equal(sleeping.signal, 'SIGTERM', sleeping.stderr.toString());
    });

    it("answers kubectl exec's sh -c, from the image's PATH", () => {
      assert.equal(runInImage(unpacked, user, ['sh', '-c', 'echo ok']), 'ok\n');
      assert.match(runInImage(unpacked, user, ['tar', '--help']), /Usage: tar /);
    });

    it("unpacks and packs what kubectl cp sends and asks for, with kubectl's own tar commands", () => {
      // kubectl cp's commands in the container (k8s.io/kubectl pkg/cmd/cp/cp.go): into it, with and
      // without --no-preserve; out of it, plainly and in the resumable form its retries use.
      const source = join(dirname(unpacked.rootfs), 'source');
      mkdirSync(source);
      writeFileSync(join(source, 'note.txt'), 'copied\n');
      const archive = execFileSync('tar', ['-C', source, '-cf', '-', 'note.txt']);
      mkdirSync(join(unpacked.rootfs, 'tmp/in'), { recursive: true });
      chownSync(join(unpacked.rootfs, 'tmp/in'), 65532, 65532);
      runInImage(unpacked, user, ['tar', '-xmf', '-', '-C', '/tmp/in'], {}, archive);
      assert.equal(readFileSync(join(unpacked.rootfs, 'tmp/in/note.txt'), 'utf8'), 'copied\n');
      runInImage(
        unpacked,
        user,
        ['tar', '--no-same-permissions', '--no-same-owner', '-xmf', '-', '-C', '/tmp'],
        {},
        archive,
      );
      assert.equal(readFileSync(join(unpacked.rootfs, 'tmp/note.txt'), 'utf8'), 'copied\n');

      for (const argv of [
        ['tar', 'cf', '-', '/tmp/in/note.txt'],
        ['sh', '-c', "tar cf - '/tmp/in/note.txt' | tail -c+1"],
      ]) {
        const packed = spawnSync(CHROOT, chrootArgs(unpacked.rootfs, user, argv), {
          env: unpacked.env,
          timeout: 30_000,
        });
        assert.equal(packed.status, 0, packed.stderr.toString());
        const listed = execFileSync('tar', ['-tvf', '-'], { input: packed.stdout, encoding: 'utf8' });
        assert.match(listed, /tmp\/in\/note\.txt\n$/, argv.join(' '));
      }
    });
  },
);
