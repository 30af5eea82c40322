// The root file system of an image, planned as [image path, entry] before anything is written, so
// it can be hashed: files copied from this machine (only files of Debian packages, recorded with
// their package versions), files given as text, directories and symlinks. Used by build-images.mjs
// for every image; scripts/lib/oci-archive.mjs writes and packs it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';

const run = (command, args) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const dpkg = (...args) => run('dpkg-query', args).trim();
const sha256File = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The uid and gid distroless calls nonroot, which the rendered securityContexts ask for. */
export const NONROOT = 65532;

const owners = new Map();
/** The package that owns `path` as dpkg lists it: bookworm's merged /usr means ldd's path may be the alias. */
function ownerOf(path) {
  if (!owners.has(path)) owners.set(path, findOwner(path));
  return owners.get(path);
}

// dpkg -S reads every package's file list: a few hundred milliseconds, hence the memo above.
function findOwner(path) {
  const alias = path.startsWith('/usr/') ? path.slice(4) : `/usr${path}`;
  for (const listed of [path, alias]) {
    try {
      return { pkg: dpkg('-S', listed).split(':')[0], listed };
    } catch {
      // not this spelling
    }
  }
  throw new Error(`build:images: no Debian package owns ${path}; the images only carry packaged files`);
}

/** The absolute paths of the shared libraries `executable` loads, as ldd prints them; none for a static one. */
function linkedLibraries(executable) {
  let output;
  try {
    output = run('ldd', [executable]);
  } catch {
    return []; // "not a dynamic executable"
  }
  return output.split('\n').flatMap((line) => /(\/\S+) \(0x[0-9a-f]+\)$/.exec(line.trim())?.slice(1) ?? []);
}

export class ImageRoot {
  /** @type {Map<string, {type: string, mode?: number, owner?: number, source?: string, content?: string, target?: string, sha256?: string, capabilities?: string}>} */
  entries = new Map();
  /** Debian package → version, for the image's label. */
  packages = new Map();
  #packageFiles = new Map();

  /** A file copied from `source`, or written from `content`; `sha256` spares hashing a big known file. */
  file(path, { source, content, mode, sha256, capabilities }) {
    this.entries.set(path.replace(/^\//, ''), { type: 'file', source, content, mode, sha256, capabilities });
    return this;
  }

  dir(path, { mode = 0o755, owner } = {}) {
    this.entries.set(path.replace(/^\//, ''), { type: 'dir', mode, owner });
    return this;
  }

  symlink(path, target) {
    this.entries.set(path.replace(/^\//, ''), { type: 'symlink', target });
    return this;
  }

  /** Records a Debian package (and its file list) for the label, without taking any of its files. */
  recordPackage(pkg) {
    if (!this.packages.has(pkg)) {
      this.packages.set(pkg, dpkg('-W', '-f=${Version}', pkg));
      this.#packageFiles.set(pkg, new Set(dpkg('-L', pkg).split('\n')));
    }
    return pkg;
  }

  /** Records the Debian package that owns `path` on this machine, without taking the file. */
  recordOwnerOf(path) {
    return this.recordPackage(ownerOf(path).pkg);
  }

  /** Adds the files of `pkg` that `keep` selects, at the paths the package lists. */
  packageFiles(pkg, keep) {
    this.recordPackage(pkg);
    for (const listed of this.#packageFiles.get(pkg)) {
      if (keep(listed) && !lstatSync(listed).isDirectory()) this.#addPackaged(pkg, listed);
    }
    return this;
  }

  /** Adds a file of a Debian package at its own path (with what its symlinks point to) and the libraries it loads. */
  packaged(path) {
    const { pkg, listed } = ownerOf(path);
    this.recordPackage(pkg);
    this.#addPackaged(pkg, listed);
    return this;
  }

  /** Adds the shared libraries `executable` (on this machine) loads, from their Debian packages. */
  librariesOf(executable) {
    for (const library of linkedLibraries(executable)) this.packaged(library);
    return this;
  }

  #addPackaged(pkg, listed) {
    if (!this.#packageFiles.get(pkg).has(listed)) {
      throw new Error(`build:images: ${pkg} does not list ${listed}`);
    }
    const stat = lstatSync(listed);
    if (stat.isSymbolicLink()) {
      const target = readlinkSync(listed);
      this.symlink(listed, target);
      this.#addPackaged(pkg, posix.resolve(posix.dirname(listed), target));
    } else if (!this.entries.has(listed.slice(1))) {
      this.file(listed, { source: listed, mode: stat.mode & 0o7777 });
      this.librariesOf(listed);
    }
  }

  /** /etc/passwd and /etc/group with root and nonroot (65532), named as distroless names them. */
  users() {
    this.file('etc/passwd', {
      content: `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`,
      mode: 0o644,
    });
    this.file('etc/group', { content: `root:x:0:\nnonroot:x:${NONROOT}:\n`, mode: 0o644 });
    return this.dir('home/nonroot', { mode: 0o700, owner: NONROOT }).dir('tmp', { mode: 0o1777 });
  }

  /** update-ca-certificates generates the bundle from the ca-certificates package's certificates. */
  caCertificates() {
    this.recordPackage('ca-certificates');
    return this.file('etc/ssl/certs/ca-certificates.crt', {
      source: '/etc/ssl/certs/ca-certificates.crt',
      mode: 0o644,
    });
  }

  /** The Debian packages, `name=version`, sorted: the image's io.k8s-on-k8s.image.debian-packages label. */
  debianPackages() {
    return [...this.packages]
      .sort()
      .map(([pkg, version]) => `${pkg}=${version}`)
      .join(' ');
  }

  /** What the root holds, path by path, for the archive's cache key. */
  fingerprint() {
    return this.#sorted().map(([path, entry]) => [
      path,
      entry.type,
      entry.mode,
      entry.owner,
      entry.target,
      entry.capabilities,
      entry.sha256 ?? (entry.source === undefined ? entry.content : sha256File(entry.source)),
    ]);
  }

  /** Writes the root into `rootfs` with every time set to `epoch`. Needs root, for owners and capabilities. */
  write(rootfs, epoch) {
    for (const [path, entry] of this.#sorted()) {
      const target = join(rootfs, path);
      mkdirSync(dirname(target), { recursive: true });
      if (entry.type === 'dir') mkdirSync(target, { recursive: true });
      else if (entry.type === 'symlink') symlinkSync(entry.target, target);
      else if (entry.source !== undefined) copyFileSync(entry.source, target);
      else writeFileSync(target, entry.content);
      if (entry.type !== 'symlink') chmodSync(target, entry.mode);
      if (entry.owner !== undefined) chownSync(target, entry.owner, entry.owner);
      // A file capability lives in the security.capability xattr, which umoci carries into the layer.
      if (entry.capabilities !== undefined) run('setcap', [entry.capabilities, target]);
    }
    // Each directory's mode, every entry's times: nothing of this machine's umask or clock stays.
    const normalize = (dir) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (lstatSync(path).isDirectory()) {
          chmodSync(path, this.entries.get(path.slice(rootfs.length + 1))?.mode ?? 0o755);
          normalize(path);
        }
        lutimesSync(path, epoch, epoch);
      }
    };
    normalize(rootfs);
    chmodSync(rootfs, 0o755);
    lutimesSync(rootfs, epoch, epoch);
  }

  #sorted() {
    return [...this.entries].sort(([a], [b]) => (a < b ? -1 : 1));
  }
}
