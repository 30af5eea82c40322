#!/usr/bin/env node
// Builds, without a container daemon, every image the renderers name, at exactly the names and tags
// they render: the join server and the operator (k8s-join-server and k8s-on-k8s-operator, each as one
// executable, scripts/lib/build-sea.mjs), the control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler), kube-proxy, CoreDNS and flannel with its CNI plugin,
// konnectivity's proxy-server and proxy-agent, each a small description of its root below; and the
// images the end-to-end tests run in pods: the probe (test/images/probe) and a busybox shell. The binaries come from their Go
// modules (scripts/kube-build.sh, scripts/addon-build.sh, run here when one is missing); the C
// programs and libraries some images need (iptables, conntrack, cp, busybox) from the files of
// their Debian packages. scripts/lib/oci-archive.mjs packs each reproducibly into
// dist/images/<name>-<tag>.oci.tar, cached in .cache/images. Prints one line per image. Needs root
// (umoci records file owners as they are on disk, setcap) and Debian's umoci.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSingleExecutable } from './lib/build-sea.mjs';
import { ImageRoot, NONROOT } from './lib/image-root.mjs';
import { buildImageArchive } from './lib/oci-archive.mjs';

const top = new URL('..', import.meta.url).pathname;
const run = (command, args, options = {}) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });

if (process.getuid?.() !== 0) {
  console.error('build:images: run as root: umoci records file owners as they are on disk');
  process.exit(1);
}
for (const tool of ['umoci', 'dpkg-query', 'ldd', 'setcap']) {
  try {
    run('sh', ['-c', `command -v ${tool}`]);
  } catch {
    console.error(`build:images: ${tool} is missing (apt-get install umoci libcap2-bin; see .ci/run)`);
    process.exit(1);
  }
}

const server = await import(join(top, 'packages', 'server', 'dist', 'src', 'index.js'));
const { DEFAULT_KUBERNETES_VERSION, PREVIOUS_PATCH_KUBERNETES_VERSION } = await import(
  join(top, 'packages', 'shared', 'dist', 'src', 'index.js')
);
const { PROBE_IMAGE } = await import(join(top, 'test', 'dist', 'harness', 'image', 'probe-image.js'));
const { SHELL_IMAGE } = await import(join(top, 'test', 'dist', 'harness', 'image', 'shell-image.js'));
const { license } = JSON.parse(readFileSync(join(top, 'package.json'), 'utf8'));
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// The component images' contents come from their Go modules, not from this repository's commits:
// without SOURCE_DATE_EPOCH their dates are the epoch, so a commit does not rebuild them.
const componentEpoch = Number(process.env.SOURCE_DATE_EPOCH ?? 0);

const kubeBin = (name, version = DEFAULT_KUBERNETES_VERSION) => join(top, '.cache', 'kube', version, name);
/** The version test/images/<dir>/go.mod requires of `module`: the version its binary is built at. */
function requiredVersion(dir, module) {
  const goMod = readFileSync(join(top, 'test', 'images', dir, 'go.mod'), 'utf8');
  const version = new RegExp(`^\\s*(?:require )?${module} (v\\S+)`, 'm').exec(goMod)?.[1];
  if (version === undefined)
    throw new Error(`build:images: test/images/${dir}/go.mod does not require ${module}`);
  return version;
}
const konnectivityVersion = () => requiredVersion('konnectivity', 'sigs.k8s.io/apiserver-network-proxy');
/** The probe's version: test/images/probe/main.go's `const version`, which its binary is built at. */
function probeVersion() {
  const main = readFileSync(join(top, 'test', 'images', 'probe', 'main.go'), 'utf8');
  const version = /^const version = "(v[^"]*)"$/m.exec(main)?.[1];
  if (version === undefined) throw new Error('build:images: test/images/probe/main.go declares no version');
  return version;
}
const addonBin = (name, version) => join(top, '.cache', 'addons', `${name}-${version}`);
/** `registry/path/name:tag` → `registry/path/name`, the key of IMAGES. */
const repositoryOf = (image) => image.slice(0, image.lastIndexOf(':'));

/** The labels every image carries; `version` is what it was built from. */
const labelsOf = ({ title, description, version, source, licenses = 'Apache-2.0' }) => ({
  'org.opencontainers.image.title': title,
  'org.opencontainers.image.description': description,
  'org.opencontainers.image.version': version,
  'org.opencontainers.image.source': source,
  'org.opencontainers.image.licenses': licenses,
});

/** iptables as kube-proxy and flanneld call it: the nft backend, the legacy one beside it, and their plugins. */
function addIptables(root) {
  root.packageFiles(
    'iptables',
    (path) =>
      /^\/usr\/sbin\/(ip6?tables-(nft|legacy)(-save|-restore)?|xtables-(nft|legacy)-multi)$/.test(path) ||
      // Matches and targets (-m comment, MASQUERADE, …) are plugins xtables loads by name.
      /\/xtables\/lib[a-z0-9]+_[A-Za-z0-9_]+\.so$/.test(path),
  );
  // Debian points these at iptables-nft through /etc/alternatives; the image points them directly.
  for (const tool of ['iptables', 'ip6tables']) {
    for (const suffix of ['', '-save', '-restore'])
      root.symlink(`usr/sbin/${tool}${suffix}`, `${tool}-nft${suffix}`);
  }
  return root;
}

/** A Go binary at `path` in an image with root and nonroot users and /tmp, as distroless/static gives. */
function staticImage(binary, path) {
  if (!existsSync(binary)) throw new Error(`build:images: ${binary} is missing`);
  return new ImageRoot().users().file(path, { source: binary, mode: 0o755 });
}

/**
 * An image of one of the server package's programs (packages/server/src/bin/<name>.ts) as one
 * executable: no Node, no node_modules in the image, only the libraries the executable links.
 */
async function nodeProgramImage(name, description) {
  const executable = await buildSingleExecutable({
    entry: join(top, 'packages', 'server', 'src', 'bin', `${name}.ts`),
    name,
    outDir: join(top, 'packages', 'server', 'dist'),
  });
  const root = new ImageRoot()
    .users()
    .caCertificates()
    .file(`usr/local/bin/${name}`, {
      source: executable.output,
      mode: 0o755,
      sha256: executable.sha256,
    })
    .librariesOf(executable.output)
    // Without it glibc asks DNS before /etc/hosts, which the kubelet writes.
    .file('etc/nsswitch.conf', { content: 'hosts: files dns\n', mode: 0o644 });
  // The executable is a copy of this Node binary: its package is recorded like the libraries'.
  try {
    root.recordOwnerOf(process.execPath);
  } catch {
    root.packages.set('node', process.version);
  }
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? gitOutput(['log', '-1', '--format=%ct']) ?? 0);
  const revision = gitOutput(['rev-parse', 'HEAD']);
  return {
    root,
    epoch,
    config: {
      user: `${NONROOT}:${NONROOT}`,
      entrypoint: `/usr/local/bin/${name}`,
      env: PATH,
      workingdir: '/',
    },
    labels: {
      ...labelsOf({
        title: name,
        description,
        version: server.SERVER_VERSION,
        // Fixed rather than read from `git remote`, which differs between clones and would change the digest.
        source: 'https://github.com/k8s-on-k8s/k8s-on-k8s',
        licenses: license,
      }),
      ...(revision === undefined ? {} : { 'org.opencontainers.image.revision': revision }),
    },
    createdBy: `${name} (sha256 ${executable.sha256})`,
  };
}

/** How each image is built (the rendered ones and the probe), at `tag`; `user` is the rendered one if any. */
const IMAGES = {
  'ghcr.io/k8s-on-k8s/k8s-join-server': () =>
    nodeProgramImage(
      'k8s-join-server',
      'The join server of a k8s-on-k8s hosted control plane: exchanges join tokens for join bundles',
    ),
  'ghcr.io/k8s-on-k8s/k8s-on-k8s-operator': () =>
    nodeProgramImage(
      'k8s-on-k8s-operator',
      'Reconciles HostedControlPlane resources into hosted Kubernetes control planes',
    ),
  'registry.k8s.io/etcd': ({ tag, user }) => {
    const version = readFileSync(kubeBin('ETCD_VERSION'), 'utf8').trim();
    // registry.k8s.io/etcd tags are the etcd version and an image revision: 3.7.0-0.
    if (!tag.startsWith(`${version.slice(1)}-`))
      throw new Error(`build:images: etcd ${version} is not ${tag}`);
    return controlPlaneImage('etcd', kubeBin('etcd'), user, version, 'https://github.com/etcd-io/etcd');
  },
  ...Object.fromEntries(
    ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].map((name) => [
      `registry.k8s.io/${name}`,
      ({ tag, user }) =>
        controlPlaneImage(
          name,
          kubeBin(name, kubernetesTag(tag)),
          user,
          kubernetesTag(tag),
          'https://github.com/kubernetes/kubernetes',
        ),
    ]),
  ),
  'registry.k8s.io/kube-proxy': ({ tag, user }) => ({
    root: addIptables(
      staticImage(kubeBin('kube-proxy', kubernetesTag(tag)), 'usr/local/bin/kube-proxy'),
    ).packaged('/usr/sbin/conntrack'),
    config: { user: user ?? '0:0', entrypoint: '/usr/local/bin/kube-proxy', env: PATH, workingdir: '/' },
    labels: labelsOf({
      title: 'kube-proxy',
      description: 'kube-proxy with iptables (nft and legacy) and conntrack',
      version: kubernetesTag(tag),
      source: 'https://github.com/kubernetes/kubernetes',
    }),
    createdBy: `k8s.io/kubernetes/cmd/kube-proxy@${tag} (scripts/kube-build.sh) on iptables, conntrack`,
  }),
  'registry.k8s.io/coredns/coredns': ({ tag, user }) => {
    const version = requiredVersion('coredns', 'github.com/coredns/coredns');
    if (version !== tag) throw new Error(`build:images: test/images/coredns builds ${version}, not ${tag}`);
    return {
      // As upstream's Dockerfile does (setcap), so 65532 binds :53 with the NET_BIND_SERVICE the pod keeps.
      root: new ImageRoot()
        .users()
        .caCertificates()
        .file('coredns', {
          source: addonBin('coredns', version),
          mode: 0o755,
          capabilities: 'cap_net_bind_service=+ep',
        }),
      config: { user: user ?? `${NONROOT}:${NONROOT}`, entrypoint: '/coredns', workingdir: '/' },
      labels: labelsOf({
        title: 'coredns',
        description: 'CoreDNS',
        version,
        source: 'https://github.com/coredns/coredns',
      }),
      createdBy: `github.com/coredns/coredns@${version} (scripts/addon-build.sh)`,
    };
  },
  'ghcr.io/flannel-io/flannel': ({ tag, user }) => {
    const version = requiredVersion('flannel', 'github.com/flannel-io/flannel');
    if (version !== tag) throw new Error(`build:images: test/images/flannel builds ${version}, not ${tag}`);
    return {
      // The DaemonSet's install-cni init container runs `cp` from this image.
      root: addIptables(staticImage(addonBin('flanneld', version), 'opt/bin/flanneld')).packaged(
        '/usr/bin/cp',
      ),
      config: { user: user ?? '0:0', entrypoint: '/opt/bin/flanneld', env: PATH, workingdir: '/' },
      labels: labelsOf({
        title: 'flannel',
        description: 'flanneld with iptables (nft and legacy) and cp',
        version,
        source: 'https://github.com/flannel-io/flannel',
      }),
      createdBy: `github.com/flannel-io/flannel@${version} (scripts/addon-build.sh) on iptables, coreutils`,
    };
  },
  'ghcr.io/flannel-io/flannel-cni-plugin': ({ user }) => {
    // github.com/flannel-io/cni-plugin is not served here; the plugin is the same code from before it
    // moved out of containernetworking/plugins, so the label says which release it really is.
    const version = requiredVersion('flannel-cni-plugin', 'github.com/containernetworking/plugins');
    return {
      // The DaemonSet's install-cni-plugin init container copies /flannel with this image's `cp`.
      root: staticImage(addonBin('flannel-cni-plugin', version), 'flannel').packaged('/usr/bin/cp'),
      config: { user: user ?? '0:0', env: PATH, workingdir: '/' },
      labels: labelsOf({
        title: 'flannel-cni-plugin',
        description: `The flannel CNI plugin of github.com/containernetworking/plugins ${version} (plugins/meta/flannel), and cp`,
        version,
        source: 'https://github.com/containernetworking/plugins',
      }),
      createdBy: `github.com/containernetworking/plugins/plugins/meta/flannel@${version} (scripts/addon-build.sh) on coreutils`,
    };
  },
  ...Object.fromEntries(
    Object.entries(server.KONNECTIVITY_IMAGES).map(([role, image]) => [
      repositoryOf(image),
      ({ tag, user }) => {
        const name = `proxy-${role}`;
        const version = konnectivityVersion();
        if (version !== tag)
          throw new Error(`build:images: test/images/konnectivity builds ${version}, not ${tag}`);
        return {
          // As upstream's Dockerfile lays it out: the binary at / on distroless/static:nonroot, whose
          // CA certificates it keeps.
          root: staticImage(addonBin(name, version), name).caCertificates(),
          config: { user: user ?? `${NONROOT}:${NONROOT}`, entrypoint: `/${name}`, workingdir: '/' },
          labels: labelsOf({
            title: name,
            description:
              role === 'server'
                ? "konnectivity's proxy-server: takes kube-apiserver's connections to the cluster through the agents' tunnels"
                : "konnectivity's proxy-agent: dials out to proxy-server and opens the connections it is asked for",
            version,
            source: 'https://github.com/kubernetes-sigs/apiserver-network-proxy',
          }),
          createdBy: `sigs.k8s.io/apiserver-network-proxy/cmd/${role}@${version} (scripts/addon-build.sh)`,
        };
      },
    ]),
  ),
  [repositoryOf(PROBE_IMAGE)]: ({ tag }) => {
    const version = probeVersion();
    if (version !== tag) throw new Error(`build:images: test/images/probe is ${version}, not ${tag}`);
    return {
      root: staticImage(addonBin('probe', version), 'probe'),
      config: { user: `${NONROOT}:${NONROOT}`, entrypoint: '/probe', workingdir: '/' },
      labels: labelsOf({
        title: 'probe',
        description:
          "The end-to-end tests' probe: DNS, in-cluster API and HTTP checks, the outcome in the termination message",
        version,
        source: 'https://github.com/k8s-on-k8s/k8s-on-k8s',
        licenses: license,
      }),
      createdBy: `test/images/probe ${version} (scripts/addon-build.sh)`,
    };
  },
  // Its tag is this repository's: what it holds is Debian's busybox-static, whose version the labels carry.
  [repositoryOf(SHELL_IMAGE)]: () => {
    const root = new ImageRoot().users().packageFiles('busybox-static', (path) => path === '/bin/busybox');
    // Every applet this busybox lists, as a symlink in /bin, which is on the image's PATH.
    for (const applet of run('/bin/busybox', ['--list']).split('\n')) {
      if (applet !== '' && applet !== 'busybox') root.symlink(`bin/${applet}`, 'busybox');
    }
    const version = root.packages.get('busybox-static');
    return {
      root,
      // A Cmd, not an Entrypoint: a pod's args alone (`kubectl run … -- sh -c …`) replace it.
      config: { user: `${NONROOT}:${NONROOT}`, cmd: ['/bin/sleep', 'infinity'], env: PATH, workingdir: '/' },
      labels: labelsOf({
        title: 'shell',
        description:
          "The end-to-end tests' shell: busybox's sh, tar (kubectl cp) and the rest, asleep for kubectl exec",
        version,
        source: 'https://sources.debian.org/src/busybox/',
        licenses: 'GPL-2.0-only',
      }),
      createdBy: `busybox-static ${version} (Debian)`,
    };
  },
};

/** A Kubernetes image's tag, which must be a release kube:build builds: the default or the previous patch. */
function kubernetesTag(tag) {
  if (tag !== DEFAULT_KUBERNETES_VERSION && tag !== PREVIOUS_PATCH_KUBERNETES_VERSION) {
    throw new Error(
      `build:images: .cache/kube holds ${DEFAULT_KUBERNETES_VERSION} and ${PREVIOUS_PATCH_KUBERNETES_VERSION}, not ${tag}`,
    );
  }
  return tag;
}

function controlPlaneImage(name, binary, user, version, source) {
  return {
    // The rendered command is the bare name: the runtime finds it on PATH.
    root: staticImage(binary, `usr/local/bin/${name}`),
    config: {
      user: user ?? `${NONROOT}:${NONROOT}`,
      entrypoint: `/usr/local/bin/${name}`,
      env: PATH,
      workingdir: '/',
    },
    labels: labelsOf({ title: name, description: name, version, source }),
    createdBy: `${name} ${version} (scripts/kube-build.sh)`,
  };
}

function gitOutput(args) {
  try {
    return run('git', ['-C', top, ...args]).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Each image the renderers name, with the user its pod runs as (if set): a default spec, with
 * flannel, and the same at the previous patch release (the upgrade tests' starting point).
 */
async function renderedImages() {
  const images = new Map();
  for (const kubernetesVersion of [DEFAULT_KUBERNETES_VERSION, PREVIOUS_PATCH_KUBERNETES_VERSION])
    await addRenderedImages(images, kubernetesVersion);
  return images;
}

async function addRenderedImages(images, kubernetesVersion) {
  const spec = server.buildControlPlaneSpec({
    name: 'images',
    namespace: 'images',
    host: '127.0.0.1',
    nodePorts: { api: 30443, join: 30444, konnectivity: 30132 },
    cni: 'flannel',
    kubernetesVersion,
  });
  const { pki } = await server.completeControlPlanePki(spec, {});
  for (const object of [...server.renderControlPlane(spec, pki), ...server.renderHostedAssets(spec)]) {
    const pod = object.spec?.template?.spec;
    for (const container of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
      const uid = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
      const gid = container.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup ?? uid;
      images.set(container.image, uid === undefined ? undefined : `${uid}:${gid}`);
    }
  }
}

/** Runs a binary build script when a binary it makes is missing; its output shows only then. */
function ensureBinaries(script, binaries) {
  if (binaries.every((binary) => existsSync(binary))) return;
  run('bash', [join(top, 'scripts', script)], { stdio: ['ignore', 'inherit', 'inherit'] });
}

ensureBinaries('kube-build.sh', [
  ...['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'].map((name) =>
    kubeBin(name),
  ),
  ...['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'].map((name) =>
    kubeBin(name, PREVIOUS_PATCH_KUBERNETES_VERSION),
  ),
]);
ensureBinaries('addon-build.sh', [
  addonBin('coredns', requiredVersion('coredns', 'github.com/coredns/coredns')),
  addonBin('flanneld', requiredVersion('flannel', 'github.com/flannel-io/flannel')),
  addonBin(
    'flannel-cni-plugin',
    requiredVersion('flannel-cni-plugin', 'github.com/containernetworking/plugins'),
  ),
  addonBin('proxy-server', konnectivityVersion()),
  addonBin('proxy-agent', konnectivityVersion()),
  addonBin('probe', probeVersion()),
]);

// The operator (deploy/operator/ names it, not a control plane's renderer) and the test images,
// which no renderer ever will, are added here, each running as its image's user.
const images = await renderedImages();
for (const image of [
  ...Object.values(server.KONNECTIVITY_IMAGES),
  server.OPERATOR_IMAGE,
  PROBE_IMAGE,
  SHELL_IMAGE,
]) {
  if (!images.has(image)) images.set(image, undefined);
}
let total = 0;
for (const [image, user] of images) {
  const describe = IMAGES[repositoryOf(image)];
  if (describe === undefined)
    throw new Error(`build:images: the renderers name ${image}, which nothing here builds`);
  const { epoch = componentEpoch, ...description } = await describe({
    tag: image.slice(image.lastIndexOf(':') + 1),
    user,
  });
  const built = buildImageArchive({ image, epoch, ...description });
  total += built.bytes;
  console.log(
    `build:images: ${image} ${built.digest} ${built.path} ${(built.bytes / 1e6).toFixed(1)} MB, ${built.reused ? 'reused' : 'built'} in ${built.ms} ms`,
  );
}
console.log(`build:images: ${(total / 1e6).toFixed(1)} MB in dist/images`);
