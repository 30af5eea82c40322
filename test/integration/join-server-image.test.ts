// The join server image as `npm run build:images` leaves it, read by tools other than the one that
// wrote it: skopeo checks the config and the name, tar unpacks the layers, and the rendered
// Deployment's command, args and Secret mounts run in that root under chroot as uid 65532, so the
// executable can need nothing from this machine.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Container, V1Deployment, V1PodSpec, V1Secret } from '@kubernetes/client-node';
import {
  JOIN_SERVER_IMAGE,
  SERVER_VERSION,
  buildControlPlaneSpec,
  completeControlPlanePki,
  componentName,
  renderControlPlane,
} from '@k8s-on-k8s/server';
import {
  CHROOT,
  REPO_ROOT,
  chrootArgs,
  httpsGet,
  imageArchivePath,
  materializeVolumes,
  readImageIndex,
  unpackImageArchive,
  type ImageConfig,
} from '../harness/index.js';

/** Where `npm run build:images` (scripts/build-images.mjs) links the archive it built or reused. */
const ARCHIVE = imageArchivePath(JOIN_SERVER_IMAGE);
const NONROOT = 65532;
const USER = `${NONROOT}:${NONROOT}`;
const TAG = JOIN_SERVER_IMAGE.slice(JOIN_SERVER_IMAGE.lastIndexOf(':') + 1);

/** The join server's pod as its Deployment renders it, and the data of the Secrets, by name. */
async function renderJoinServerPod(): Promise<{
  pod: V1PodSpec;
  container: V1Container;
  secrets: Map<string, Record<string, string>>;
}> {
  const spec = buildControlPlaneSpec({
    name: 'image',
    namespace: 'infra',
    host: '127.0.0.1',
    nodePorts: { api: 30443, join: 30444, konnectivity: 30132 },
  });
  const { pki } = await completeControlPlanePki(spec, {});
  const objects = renderControlPlane(spec, pki);
  const pod = objects.find(
    (o): o is V1Deployment =>
      o.kind === 'Deployment' && o.metadata?.name === componentName(spec, 'join-server'),
  )?.spec?.template.spec;
  const container = pod?.containers[0];
  assert.ok(pod && container, 'the join server Deployment is rendered');
  const secrets = new Map(
    objects.flatMap((o) =>
      o.kind === 'Secret' ? [[o.metadata?.name ?? '', (o as V1Secret).data ?? {}]] : [],
    ),
  );
  return { pod, container, secrets };
}

describe(
  'join server image (npm run build:images)',
  {
    skip: existsSync(ARCHIVE) ? false : `${ARCHIVE} has not been built: run \`npm run build:images\``,
  },
  () => {
    let dir = '';
    let rootfs = '';
    let image: ImageConfig;
    let env: Record<string, string>;

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'join-server-image-'));
      ({ rootfs, image, env } = unpackImageArchive(ARCHIVE, dir));
    });

    after(() => {
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    });

    it('carries the name the renderer uses, for ctr import and skopeo', () => {
      const manifests = readImageIndex(ARCHIVE);
      assert.equal(manifests.length, 1);
      const [entry] = manifests;
      assert.equal(entry?.annotations?.['io.containerd.image.name'], JOIN_SERVER_IMAGE);
      // skopeo finds the image by its org.opencontainers.image.ref.name.
      const inspected = JSON.parse(
        execFileSync('skopeo', ['inspect', `oci-archive:${ARCHIVE}:${TAG}`], { encoding: 'utf8' }),
      ) as { Digest: string };
      assert.equal(inspected.Digest, entry.digest);
    });

    it('runs as nonroot 65532 from /usr/local/bin, labelled with its version, source and Debian packages', () => {
      assert.equal(image.config.User, USER);
      assert.deepEqual(image.config.Entrypoint, ['/usr/local/bin/k8s-join-server']);
      assert.ok(env.PATH?.split(':').includes('/usr/local/bin'), `PATH=${env.PATH ?? ''}`);
      const labels = image.config.Labels ?? {};
      assert.equal(labels['org.opencontainers.image.title'], 'k8s-join-server');
      assert.equal(labels['org.opencontainers.image.version'], SERVER_VERSION);
      assert.equal(labels['org.opencontainers.image.licenses'], 'Apache-2.0');
      assert.equal(labels['org.opencontainers.image.source'], 'https://github.com/k8s-on-k8s/k8s-on-k8s');
      assert.match(labels['org.opencontainers.image.created'] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      if (existsSync(join(REPO_ROOT, '.git'))) {
        assert.match(labels['org.opencontainers.image.revision'] ?? '', /^[0-9a-f]{40}$/);
      }
      const packages = (labels['io.k8s-on-k8s.image.debian-packages'] ?? '').split(' ');
      for (const pkg of ['libc6', 'libstdc++6', 'libgcc-s1', 'ca-certificates']) {
        assert.ok(
          packages.some((p) => p.startsWith(`${pkg}=`)),
          `${pkg} in ${packages.join(' ')}`,
        );
      }
      assert.match(readFileSync(join(rootfs, 'etc/passwd'), 'utf8'), /^nonroot:x:65532:65532:/m);
      assert.match(readFileSync(join(rootfs, 'etc/group'), 'utf8'), /^nonroot:x:65532:/m);
      assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
      assert.match(
        readFileSync(join(rootfs, 'etc/ssl/certs/ca-certificates.crt'), 'utf8'),
        /BEGIN CERTIFICATE/,
      );
      assert.ok(!existsSync(join(rootfs, 'bin/sh')), 'no shell');
    });

    it('answers --help as 65532 with nothing from this machine', () => {
      const help = execFileSync(CHROOT, chrootArgs(rootfs, USER, ['k8s-join-server', '--help']), {
        encoding: 'utf8',
        env,
      });
      assert.match(help, /^Usage: k8s-join-server --tls-cert FILE/);
    });

    it("runs the rendered Deployment's command, args and Secret mounts, serves /healthz and drains on SIGTERM", async () => {
      const { pod, container, secrets } = await renderJoinServerPod();
      assert.equal(container.image, JOIN_SERVER_IMAGE);
      await materializeVolumes(rootfs, { spec: pod }, secrets, new Set());
      // The harness writes them 0600 for its root processes; the kubelet gives them the volume's
      // defaultMode and the pod's fsGroup, through which 65532 reads them.
      for (const mount of container.volumeMounts ?? []) {
        const mode = pod.volumes?.find((v) => v.name === mount.name)?.secret?.defaultMode;
        for (const name of readdirSync(join(rootfs, mount.mountPath))) {
          chownSync(join(rootfs, mount.mountPath, name), 0, pod.securityContext?.fsGroup ?? 0);
          chmodSync(join(rootfs, mount.mountPath, name), mode ?? 0o644);
        }
      }
      const caCert = container.args?.find((arg) => arg.startsWith('--ca-cert='))?.slice('--ca-cert='.length);
      const caPem = readFileSync(join(rootfs, caCert ?? ''), 'utf8');
      // The pod has its own network namespace and port 8443; this chroot shares the machine's.
      const args = (container.args ?? []).map((arg) =>
        arg.startsWith('--listen=') ? '--listen=127.0.0.1:0' : arg,
      );
      const child = spawn(CHROOT, chrootArgs(rootfs, USER, [...(container.command ?? []), ...args]), {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const listening = await new Promise<{ url: string }>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no "listening" line within 20 s; stderr: ${stderr}\nstdout: ${stdout}`));
        }, 20_000);
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const line = stdout.split('\n').find((l) => l.includes('"msg":"listening"'));
          if (line === undefined) return;
          clearTimeout(timer);
          resolve(JSON.parse(line) as { url: string });
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`k8s-join-server exited before listening: ${stderr}\n${stdout}`));
        });
      });
      try {
        const health = await httpsGet(`${listening.url}/healthz`, { ca: caPem });
        assert.equal(health.status, 200);
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0, stderr);
    });
  },
);
