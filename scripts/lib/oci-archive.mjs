// Packs an ImageRoot (scripts/lib/image-root.mjs) into an OCI image archive without a container
// daemon: umoci writes one layer and the config, the index names the image for `ctr images import`
// (io.containerd.image.name) and for skopeo (org.opencontainers.image.ref.name, the tag, as in
// scripts/pause-image-build.sh), and tar makes the outer archive with fixed owners and times.
// Reproducible: the same root, config, labels and epoch give the same manifest digest. Cached by a
// hash of all of them, .cache/images/<name>-<hash>.oci.tar, and linked to dist/images/<name>-<tag>.oci.tar.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

const top = new URL('../..', import.meta.url).pathname;
const run = (command, args) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const sha256 = (data) => createHash('sha256').update(data).digest('hex');
/** Everything that decides how an archive is packed, for the cache key. */
const packerSources = ['oci-archive.mjs', 'image-root.mjs'].map((file) =>
  sha256(readFileSync(new URL(file, import.meta.url))),
);
const ARCHITECTURE = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;
/** Each change of an image's inputs makes a new archive: this many of each name stay in the cache. */
const KEEP = 3;

/** `registry/path/name:tag` → its parts; the archive is named after the last path element and the tag. */
export function archiveName(image) {
  const colon = image.lastIndexOf(':');
  const repository = image.slice(0, colon);
  return { name: repository.slice(repository.lastIndexOf('/') + 1), tag: image.slice(colon + 1) };
}

/**
 * Builds (or reuses) the archive of `image` and links it into dist/images; returns what the build
 * printed: the image, its manifest digest, the stable path and its size, and whether it was reused.
 * `config` holds umoci's --config.* options (user, entrypoint, cmd, env, workingdir).
 */
export function buildImageArchive({ image, root, config, labels, epoch, createdBy }) {
  const started = Date.now();
  const { name, tag } = archiveName(image);
  const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
  const allLabels = {
    ...labels,
    'org.opencontainers.image.created': created,
    ...(root.packages.size === 0 ? {} : { 'io.k8s-on-k8s.image.debian-packages': root.debianPackages() }),
  };
  const hash = sha256(
    JSON.stringify({
      packer: packerSources,
      umoci: run('umoci', ['--version']).trim(),
      image,
      architecture: ARCHITECTURE,
      epoch,
      labels: allLabels,
      config,
      createdBy,
      root: root.fingerprint(),
    }),
  ).slice(0, 12);

  const cacheDir = join(top, '.cache', 'images');
  const cached = join(cacheDir, `${name}-${hash}.oci.tar`);
  const stable = join(top, 'dist', 'images', `${name}-${tag}.oci.tar`);
  const reused = existsSync(cached);
  if (!reused) {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = mkdtempSync(join(cacheDir, '.build.'));
    try {
      pack({ image, tag, root, config, labels: allLabels, epoch, created, createdBy, tmp });
      renameSync(join(tmp, 'image.tar'), cached);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    pruneCache(cacheDir, name);
  }
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
  return { image, digest, path: stable, bytes: statSync(stable).size, reused, ms: Date.now() - started };
}

function pack({ image, tag, root, config, labels, epoch, created, createdBy, tmp }) {
  const layout = join(tmp, 'oci');
  const ref = `${layout}:${tag}`;
  const bundle = join(tmp, 'bundle');
  run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', ref]);
  run('umoci', ['unpack', '--image', ref, bundle]);
  root.write(join(bundle, 'rootfs'), epoch);
  run('umoci', [
    ...['repack', '--image', ref, '--history.created', created],
    ...['--history.created_by', createdBy, bundle],
  ]);
  run('umoci', [
    ...['config', '--image', ref, '--no-history', '--created', created],
    ...['--architecture', ARCHITECTURE, '--os', 'linux'],
    ...Object.entries(config).flatMap(([key, value]) =>
      (Array.isArray(value) ? value : [value]).flatMap((item) => [`--config.${key}`, item]),
    ),
    ...Object.entries(labels).flatMap(([key, value]) => ['--config.label', `${key}=${value}`]),
  ]);
  run('umoci', ['gc', '--layout', layout]);
  // ctr import names the image after io.containerd.image.name; umoci wrote ref.name (the tag).
  const indexPath = join(layout, 'index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8'));
  for (const manifest of index.manifests) {
    manifest.platform = { architecture: ARCHITECTURE, os: 'linux' };
    manifest.annotations = { ...manifest.annotations, 'io.containerd.image.name': image };
  }
  writeFileSync(indexPath, JSON.stringify(index));
  run('tar', [
    ...['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`],
    ...['--mode=u=rwX,go=rX', '--format=gnu', '-C', layout, '-cf', join(tmp, 'image.tar')],
    ...['oci-layout', 'index.json', 'blobs'],
  ]);
}

function pruneCache(cacheDir, name) {
  const pattern = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{12}\\.oci\\.tar$`);
  const archives = readdirSync(cacheDir)
    .filter((file) => pattern.test(file))
    .map((file) => join(cacheDir, file))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const old of archives.slice(KEEP)) rmSync(old);
}
