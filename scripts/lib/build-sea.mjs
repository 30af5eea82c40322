// Builds a TypeScript entry point into one executable that needs no Node where it runs: esbuild
// bundles it (and its dependencies) into one CommonJS file, Node's single-executable-application
// support turns that into a blob, and postject injects the blob into a copy of this Node binary.
// Used by build-agent.mjs (k8s-join) and build-images.mjs (k8s-join-server).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const top = new URL('../..', import.meta.url).pathname;

// Optional dependencies of bundled packages that are not installed (node-fetch's `encoding`, ws's
// `bufferutil` and `utf-8-validate`): esbuild would leave their require() in the bundle, and a
// single executable's require() warns on every start for any module that is not built in. They are
// bundled as "not found" instead, which is what those packages' try/catch expects.
const ABSENT_OPTIONAL_MODULES = ['encoding', 'bufferutil', 'utf-8-validate'];
const absentOptionalModules = {
  name: 'absent-optional-modules',
  setup(builder) {
    builder.onResolve({ filter: new RegExp(`^(${ABSENT_OPTIONAL_MODULES.join('|')})$`) }, (args) => ({
      path: args.path,
      namespace: 'absent',
    }));
    builder.onLoad({ filter: /.*/, namespace: 'absent' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${args.path}'`)}), { code: 'MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
  },
};

/**
 * Writes `<outDir>/<name>-linux-<arch>`, its `.sha256` and a symlink `<outDir>/<name>`; returns the
 * executable's path, sha256 and size. The intermediate bundle and blob stay in .cache/sea.
 */
export async function buildSingleExecutable({ entry, name, outDir }) {
  const work = join(top, '.cache', 'sea');
  const file = `${name}-linux-${process.arch}`;
  const output = join(outDir, file);
  mkdirSync(work, { recursive: true });
  mkdirSync(outDir, { recursive: true });

  const bundle = join(work, `${name}.cjs`);
  const blob = join(work, `${name}.blob`);
  const seaConfig = join(work, `${name}.sea-config.json`);
  // Node 20's SEA runs a CommonJS main only. Paths are relative (the bundle's comments name its
  // sources, the blob names its main), so two clones build the same bytes.
  await build({
    absWorkingDir: top,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: bundle,
    plugins: [absentOptionalModules],
    logLevel: 'warning',
  });
  // The shebang would be a syntax error inside the SEA's CommonJS wrapper.
  writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/^#!.*\n/, ''));
  writeFileSync(
    seaConfig,
    JSON.stringify({ main: `${name}.cjs`, output: `${name}.blob`, disableExperimentalSEAWarning: true }),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { cwd: work, stdio: 'ignore' });
  rmSync(output, { force: true });
  copyFileSync(process.execPath, output);
  chmodSync(output, 0o755);
  execFileSync(
    process.execPath,
    [
      join(top, 'node_modules', 'postject', 'dist', 'cli.js'),
      output,
      'NODE_SEA_BLOB',
      blob,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ],
    // postject warns about ELF note sections of Node's binary on every run; its stderr is shown only
    // if it fails (execFileSync then throws with it).
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const link = join(outDir, name);
  rmSync(link, { force: true });
  symlinkSync(file, link);
  const sha256 = createHash('sha256').update(readFileSync(output)).digest('hex');
  writeFileSync(`${output}.sha256`, `${sha256}  ${file}\n`);
  return { output, sha256, bytes: statSync(output).size };
}
