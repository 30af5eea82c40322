#!/usr/bin/env node
// Builds the join server image without a container daemon: k8s-join-server as one executable
// (scripts/lib/build-sea.mjs) on a minimal root — the C libraries the executable links, taken from
// the files of their Debian packages, CA certificates, a nonroot user and /tmp — packed by umoci
// into an OCI image archive that `ctr images import` and `skopeo copy oci-archive:…` read.
// Reproducible: fixed file times (SOURCE_DATE_EPOCH, else the commit time), owners and created
// dates, so the same inputs give the same manifest digest. The archive is cached by a hash of
// everything that goes into it, .cache/images/k8s-join-server-<hash>.oci.tar, and linked to the
// stable dist/images/k8s-join-server-v<version>.oci.tar. Needs root (umoci records file owners as
// they are on disk) and Debian's umoci.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { buildSingleExecutable } from './lib/build-sea.mjs';

const top = new URL('..', import.meta.url).pathname;
const started = Date.now();
const run = (command, args, options = {}) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
const sha256 = (data) => createHash('sha256').update(data).digest('hex');

if (process.getuid?.() !== 0) {
  console.error('build:images: run as root: umoci records file owners as they are on disk');
  process.exit(1);
}
for (const tool of ['umoci', 'dpkg-query', 'ldd']) {
  try {
    run('sh', ['-c', `command -v ${tool}`]);
  } catch {
    console.error(`build:images: ${tool} is missing (apt-get install umoci; see .ci/run)`);
    process.exit(1);
  }
}

// The name and version the renderer puts into the Deployment (npm run build compiles them).
const { JOIN_SERVER_IMAGE, SERVER_VERSION } = await import(
  join(top, 'packages', 'server', 'dist', 'src', 'index.js')
);
const { license } = JSON.parse(readFileSync(join(top, 'package.json'), 'utf8'));
const executable = await buildSingleExecutable({
  entry: join(top, 'packages', 'server', 'src', 'bin', 'k8s-join-server.ts'),
  name: 'k8s-join-server',
  outDir: join(top, 'packages', 'server', 'dist'),
});

// --- The root, planned as [image path, entry] before anything is copied, so it can be hashed.
const root = new Map();
const addFile = (path, entry) => root.set(path, { type: 'file', ...entry });
const packages = new Map();
const packageFiles = new Map();
const dpkg = (...args) => run('dpkg-query', args).trim();
/** The package that owns `path` as dpkg lists it: bookworm's merged /usr means ldd's path may be the alias. */
function ownerOf(path) {
  const alias = path.startsWith('/usr/') ? path.slice(4) : `/usr${path}`;
  for (const listed of [path, alias]) {
    try {
      return { pkg: dpkg('-S', listed).split(':')[0], listed };
    } catch {
      // not this spelling
    }
  }
  throw new Error(`build:images: no Debian package owns ${path}; the image only carries packaged files`);
}
function recordPackage(pkg) {
  if (!packages.has(pkg)) {
    packages.set(pkg, dpkg('-W', '-f=${Version}', pkg));
    packageFiles.set(pkg, new Set(dpkg('-L', pkg).split('\n')));
  }
}
/** Adds a packaged file at the path its package lists, and what its symlinks point to. */
function addPackagedFile(pkg, listed) {
  if (!packageFiles.get(pkg).has(listed)) throw new Error(`build:images: ${pkg} does not list ${listed}`);
  const stat = lstatSync(listed);
  if (stat.isSymbolicLink()) {
    const target = readlinkSync(listed);
    root.set(listed.slice(1), { type: 'symlink', target });
    addPackagedFile(pkg, posix.resolve(posix.dirname(listed), target));
  } else {
    addFile(listed.slice(1), { source: listed, mode: stat.mode & 0o7777 });
  }
}

addFile('usr/local/bin/k8s-join-server', { source: executable.output, mode: 0o755 });
// The executable is a copy of this Node binary: its package is recorded like the libraries'.
try {
  const { pkg } = ownerOf(process.execPath);
  recordPackage(pkg);
} catch {
  packages.set('node', process.version);
}
const linked = run('ldd', [executable.output])
  .split('\n')
  .flatMap((line) => /(\/\S+) \(0x[0-9a-f]+\)$/.exec(line.trim())?.slice(1) ?? []);
for (const path of linked) {
  const { pkg, listed } = ownerOf(path);
  recordPackage(pkg);
  addPackagedFile(pkg, listed);
}
// update-ca-certificates generates the bundle from the ca-certificates package's certificates.
addFile('etc/ssl/certs/ca-certificates.crt', { source: '/etc/ssl/certs/ca-certificates.crt', mode: 0o644 });
recordPackage('ca-certificates');
// The user and group of the Deployment's securityContext, named as distroless names them.
addFile('etc/passwd', {
  content: 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n',
  mode: 0o644,
});
addFile('etc/group', { content: 'root:x:0:\nnonroot:x:65532:\n', mode: 0o644 });
root.set('home/nonroot', { type: 'dir', mode: 0o700, owner: 65532 });
// Without it glibc asks DNS before /etc/hosts, which the kubelet writes.
addFile('etc/nsswitch.conf', { content: 'hosts: files dns\n', mode: 0o644 });
root.set('tmp', { type: 'dir', mode: 0o1777 });

// --- Image config and the cache key.
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? gitOutput(['log', '-1', '--format=%ct']) ?? 0);
const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
const revision = gitOutput(['rev-parse', 'HEAD']);
const debianPackages = [...packages]
  .sort()
  .map(([pkg, version]) => `${pkg}=${version}`)
  .join(' ');
const labels = {
  'org.opencontainers.image.title': 'k8s-join-server',
  'org.opencontainers.image.description':
    'The join server of a k8s-on-k8s hosted control plane: exchanges join tokens for join bundles',
  'org.opencontainers.image.version': SERVER_VERSION,
  // Fixed rather than read from `git remote`, which differs between clones and would change the digest.
  'org.opencontainers.image.source': 'https://github.com/k8s-on-k8s/k8s-on-k8s',
  'org.opencontainers.image.licenses': license,
  'org.opencontainers.image.created': created,
  ...(revision === undefined ? {} : { 'org.opencontainers.image.revision': revision }),
  'io.k8s-on-k8s.image.debian-packages': debianPackages,
};
const config = {
  user: '65532:65532',
  entrypoint: '/usr/local/bin/k8s-join-server',
  // The Deployment's `command` names k8s-join-server; the runtime looks it up on this PATH.
  env: 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  workingdir: '/',
};
const architecture = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;
// The OCI layout's ref.name is the tag alone, as in scripts/pause-image-build.sh.
const tag = JOIN_SERVER_IMAGE.slice(JOIN_SERVER_IMAGE.lastIndexOf(':') + 1);
const hash = sha256(
  JSON.stringify({
    script: sha256(readFileSync(new URL(import.meta.url))),
    umoci: run('umoci', ['--version']).trim(),
    image: JOIN_SERVER_IMAGE,
    architecture,
    epoch,
    labels,
    config,
    root: [...root]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([path, entry]) => [
        path,
        entry.type,
        entry.mode,
        entry.owner,
        entry.target,
        entry.source === executable.output
          ? executable.sha256
          : entry.source === undefined
            ? entry.content
            : sha256(readFileSync(entry.source)),
      ]),
  }),
).slice(0, 12);

const cacheDir = join(top, '.cache', 'images');
const cached = join(cacheDir, `k8s-join-server-${hash}.oci.tar`);
const stable = join(top, 'dist', 'images', `k8s-join-server-v${SERVER_VERSION}.oci.tar`);
const reused = existsSync(cached);
if (!reused) buildArchive();
// Linked in by rename, so a reader never sees half a file; rename(2) does nothing when both names
// are already the same file, hence the inode check.
if (!existsSync(stable) || statSync(stable).ino !== statSync(cached).ino) {
  mkdirSync(dirname(stable), { recursive: true });
  rmSync(`${stable}.new`, { force: true });
  try {
    linkSync(cached, `${stable}.new`);
  } catch {
    copyFileSync(cached, `${stable}.new`);
  }
  renameSync(`${stable}.new`, stable);
}
const digest = JSON.parse(run('tar', ['-xOf', stable, 'index.json'])).manifests[0].digest;
console.log(
  `build:images: ${JOIN_SERVER_IMAGE} ${digest}\n  ${stable} (${(statSync(stable).size / 1e6).toFixed(1)} MB, ${reused ? 'reused' : 'built'} ${cached}) in ${Date.now() - started} ms`,
);

function gitOutput(args) {
  try {
    return run('git', ['-C', top, ...args]).trim() || undefined;
  } catch {
    return undefined;
  }
}

function buildArchive() {
  mkdirSync(cacheDir, { recursive: true });
  const tmp = mkdtempSync(join(cacheDir, '.build.'));
  try {
    const layout = join(tmp, 'oci');
    const image = `${layout}:${tag}`;
    const bundle = join(tmp, 'bundle');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', image]);
    run('umoci', ['unpack', '--image', image, bundle]);
    const rootfs = join(bundle, 'rootfs');
    writeRoot(rootfs);
    run('umoci', [
      'repack',
      '--image',
      image,
      '--history.created',
      created,
      '--history.created_by',
      `scripts/build-images.mjs: k8s-join-server (sha256 ${executable.sha256}) on ${debianPackages}`,
      bundle,
    ]);
    run('umoci', [
      'config',
      '--image',
      image,
      '--no-history',
      '--created',
      created,
      '--architecture',
      architecture,
      '--os',
      'linux',
      ...Object.entries(config).flatMap(([key, value]) => [`--config.${key}`, value]),
      ...Object.entries(labels).flatMap(([key, value]) => ['--config.label', `${key}=${value}`]),
    ]);
    run('umoci', ['gc', '--layout', layout]);
    // ctr import names the image after io.containerd.image.name; umoci wrote ref.name (the tag).
    const indexPath = join(layout, 'index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    for (const manifest of index.manifests) {
      manifest.platform = { architecture, os: 'linux' };
      manifest.annotations = { ...manifest.annotations, 'io.containerd.image.name': JOIN_SERVER_IMAGE };
    }
    writeFileSync(indexPath, JSON.stringify(index));
    run('tar', [
      ...['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`],
      ...['--mode=u=rwX,go=rX', '--format=gnu', '-C', layout, '-cf', join(tmp, 'image.tar')],
      ...['oci-layout', 'index.json', 'blobs'],
    ]);
    renameSync(join(tmp, 'image.tar'), cached);
    // Each commit changes the revision label, and so the hash: keep the three newest archives.
    const archives = readdirSync(cacheDir)
      .filter((name) => /^k8s-join-server-[0-9a-f]{12}\.oci\.tar$/.test(name))
      .map((name) => join(cacheDir, name))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    for (const old of archives.slice(3)) rmSync(old);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Writes the planned root into `rootfs` with every time set to the epoch. */
function writeRoot(rootfs) {
  for (const [path, entry] of [...root].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const target = join(rootfs, path);
    mkdirSync(dirname(target), { recursive: true });
    if (entry.type === 'dir') mkdirSync(target, { recursive: true });
    else if (entry.type === 'symlink') symlinkSync(entry.target, target);
    else if (entry.source !== undefined) copyFileSync(entry.source, target);
    else writeFileSync(target, entry.content);
    if (entry.type !== 'symlink') chmodSync(target, entry.mode);
    if (entry.owner !== undefined) chownSync(target, entry.owner, entry.owner);
  }
  // Each directory's mode, every entry's times: nothing of this machine's umask or clock stays.
  const normalize = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (lstatSync(path).isDirectory()) {
        chmodSync(path, root.get(path.slice(rootfs.length + 1))?.mode ?? 0o755);
        normalize(path);
      }
      lutimesSync(path, epoch, epoch);
    }
  };
  normalize(rootfs);
  chmodSync(rootfs, 0o755);
  lutimesSync(rootfs, epoch, epoch);
}
