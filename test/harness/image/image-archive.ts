// The OCI image archives `npm run build:images` leaves in dist/images, read by tools other than the
// ones that wrote them: skopeo checks every blob against its digest and reads the config, tar
// unpacks the layers into a root the tests chroot into.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../repo-root.js';

/** coreutils' chroot, by path: the child's PATH is the image's. */
export const CHROOT = '/usr/sbin/chroot';

export interface ImageConfig {
  readonly config: {
    readonly User?: string;
    readonly Entrypoint?: string[];
    readonly Cmd?: string[];
    readonly Env?: string[];
    readonly Labels?: Record<string, string>;
  };
}

export interface UnpackedImage {
  readonly rootfs: string;
  readonly image: ImageConfig;
  /** The image's Env, by name. */
  readonly env: Record<string, string>;
}

/** Where build:images links the archive of `image` (`registry/path/name:tag` → name-tag.oci.tar). */
export function imageArchivePath(image: string): string {
  const colon = image.lastIndexOf(':');
  const repository = image.slice(0, colon);
  const name = repository.slice(repository.lastIndexOf('/') + 1);
  return join(REPO_ROOT, 'dist', 'images', `${name}-${image.slice(colon + 1)}.oci.tar`);
}

/** Copies `archive` through skopeo (which verifies each blob) into `dir` and unpacks its layers into `dir`/rootfs. */
export function unpackImageArchive(archive: string, dir: string): UnpackedImage {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  const copied = join(dir, 'image');
  execFileSync('skopeo', ['copy', '--quiet', `oci-archive:${archive}`, `dir:${copied}`]);
  const manifest = JSON.parse(readFileSync(join(copied, 'manifest.json'), 'utf8')) as {
    layers: { digest: string; mediaType: string }[];
  };
  for (const layer of manifest.layers) {
    if (!/^application\/vnd\.oci\.image\.layer\.v1\.tar(\+gzip)?$/.test(layer.mediaType)) {
      throw new Error(`unexpected layer media type ${layer.mediaType} in ${archive}`);
    }
    const blob = join(copied, layer.digest.replace(/^sha256:/, ''));
    // --xattrs keeps file capabilities (security.capability), which CoreDNS's binary carries.
    execFileSync('tar', [
      ...['-xf', blob, '-C', rootfs, '--same-owner', '--same-permissions'],
      ...['--xattrs', '--xattrs-include=security.capability'],
    ]);
  }
  const image = JSON.parse(
    execFileSync('skopeo', ['inspect', '--config', `oci-archive:${archive}`], { encoding: 'utf8' }),
  ) as ImageConfig;
  const env = Object.fromEntries(
    (image.config.Env ?? []).map((entry) => [
      entry.slice(0, entry.indexOf('=')),
      entry.slice(entry.indexOf('=') + 1),
    ]),
  );
  return { rootfs, image, env };
}

/** The index entry of `archive`: its manifest digest and annotations (the names ctr and skopeo use). */
export function readImageIndex(archive: string): {
  digest: string;
  annotations?: Record<string, string>;
}[] {
  const index = JSON.parse(execFileSync('tar', ['-xOf', archive, 'index.json'], { encoding: 'utf8' })) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  return index.manifests;
}

/** chroot's arguments to run `argv` in `rootfs` as `user` (`uid:gid`). */
export function chrootArgs(rootfs: string, user: string, argv: readonly string[]): string[] {
  return [`--userspec=${user}`, rootfs, ...argv];
}
