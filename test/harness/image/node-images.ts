// A node's images, the way a machine without a registry gets them: the archives build:images leaves
// in dist/images, bind-mounted into a worker host, imported with `ctr images import` into
// containerd's CRI namespace, where the kubelet finds them and never pulls.
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { REPO_ROOT } from '../repo-root.js';
import type { WorkerBindMount } from '../worker/worker-bind-mount.js';
import type { WorkerHost } from '../worker/worker-host.js';
import { imageArchivePath } from './image-archive.js';

/** Where the image archives of dist/images appear inside a node. */
const NODE_IMAGES_DIR = '/opt/k8s-on-k8s/images';

/** The bind mount a worker host needs for importImages. */
export const NODE_IMAGES_MOUNT: WorkerBindMount = {
  source: join(REPO_ROOT, 'dist', 'images'),
  target: NODE_IMAGES_DIR,
  readOnly: true,
};

/** The image names containerd's CRI namespace holds on `node`. */
export async function nodeImages(node: WorkerHost): Promise<string[]> {
  const listed = await node.exec('ctr', ['--namespace', 'k8s.io', 'images', 'list', '--quiet']);
  if (listed.exitCode !== 0) throw new Error(`ctr images list on ${node.name}: ${listed.stderr}`);
  return listed.stdout.split('\n').filter((line) => line !== '');
}

/**
 * Imports each image's archive into `node` (booted with NODE_IMAGES_MOUNT); fails naming an image
 * that has no archive, or one containerd does not list afterwards.
 */
export async function importImages(node: WorkerHost, images: readonly string[]): Promise<void> {
  for (const image of images) {
    const archive = imageArchivePath(image);
    if (!existsSync(archive)) {
      throw new Error(`no archive for ${image} at ${archive}: run \`npm run build:images\``);
    }
    const imported = await node.exec(
      'ctr',
      ['--namespace', 'k8s.io', 'images', 'import', `${NODE_IMAGES_DIR}/${basename(archive)}`],
      { timeoutMs: 180_000 },
    );
    if (imported.exitCode !== 0) {
      throw new Error(`ctr images import ${archive} on ${node.name}: ${imported.stderr}`);
    }
  }
  const present = await nodeImages(node);
  const missing = images.filter((image) => !present.includes(image));
  if (missing.length > 0) {
    throw new Error(`imported, yet containerd does not list ${missing.join(', ')}: ${present.join(' ')}`);
  }
}
