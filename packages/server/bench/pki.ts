// `npm run bench:pki`: how long a whole hosted control plane's PKI takes (4 CAs, the service-account
// key pair, 10 leaf certificates: 15 RSA-2048 keys, plus the encryption key), against `openssl`
// making the same keys and certificates in the same run, with the same parallelism (the CAs first,
// then every leaf at once). Figures, not assertions; read the ratio, the machine is shared.
//
// Knobs (environment): BENCH_ROUNDS (default 5; the median round of each is reported).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildControlPlaneSpec } from '../src/control-plane/spec.js';
import { PKI_NAMES, completeControlPlanePki, leafCertificates } from '../src/control-plane/pki.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '5');
const spec = buildControlPlaneSpec({ name: 'bench', namespace: 'bench', host: 'api.example.com' });
const leaves = leafCertificates(spec);
const CA_FILES = {
  ca: 'ca',
  frontProxyCa: 'front-proxy-ca',
  etcdCa: 'etcd-ca',
  kubeletServingCa: 'kubelet-serving-ca',
} as const;

async function ours(): Promise<number> {
  const start = process.hrtime.bigint();
  const { generated } = await completeControlPlanePki(spec, {});
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (generated.length !== PKI_NAMES.length) throw new Error(`generated ${generated.length} pieces`);
  return ms;
}

/** The same PKI with the openssl CLI, one process per step as a shell script would run it. */
async function openssl(dir: string): Promise<number> {
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const start = process.hrtime.bigint();
  await Promise.all([
    ...Object.entries(CA_FILES).map(([, file]) =>
      ssl(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '3650',
        '-subj',
        `/CN=${file}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
        '-keyout',
        `${file}.key`,
        '-out',
        `${file}.crt`,
      ),
    ),
    ssl('genrsa', '-out', 'sa.key', '2048').then(() =>
      ssl('rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'),
    ),
    ssl('rand', '-base64', '-out', 'encryption.key', '32'),
  ]);
  await Promise.all(
    Object.entries(leaves).map(async ([name, { issuer, spec: cert }]) => {
      const sans = [
        ...(cert.dnsNames ?? []).map((d) => `DNS:${d}`),
        ...(cert.ipAddresses ?? []).map((ip) => `IP:${ip}`),
      ];
      const eku =
        cert.usage === 'server'
          ? 'serverAuth'
          : cert.usage === 'client'
            ? 'clientAuth'
            : 'serverAuth,clientAuth';
      await writeFile(
        join(dir, `${name}.ext`),
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          `extendedKeyUsage=${eku}`,
          ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
        ].join('\n'),
      );
      const subject = [...(cert.organizations ?? []).map((o) => `/O=${o}`), `/CN=${cert.commonName}`].join(
        '',
      );
      await ssl(
        'req',
        '-new',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        subject,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      );
      const ca = CA_FILES[issuer];
      await ssl(
        'x509',
        '-req',
        '-sha256',
        '-days',
        '365',
        '-in',
        `${name}.csr`,
        '-CA',
        `${ca}.crt`,
        '-CAkey',
        `${ca}.key`,
        '-set_serial',
        `0x${Buffer.from(name).toString('hex')}`,
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.crt`,
      );
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const { stdout: version } = await run('openssl', ['version']).catch(() => {
  console.error('bench:pki needs the openssl CLI on PATH');
  process.exit(1);
});
console.log(
  `PKI of one hosted control plane: ${PKI_NAMES.length} pieces (${Object.keys(leaves).length + Object.keys(CA_FILES).length + 1} RSA-2048 keys, ${Object.keys(leaves).length + Object.keys(CA_FILES).length} certificates, 1 encryption key)`,
);
console.log(
  `node ${process.version}, ${version.trim()}, ${availableParallelism()} CPUs, ${ROUNDS} rounds each, interleaved`,
);
const oursMs: number[] = [];
const opensslMs: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-pki-'));
  try {
    oursMs.push(await ours());
    opensslMs.push(await openssl(dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
const a = median(oursMs);
const b = median(opensslMs);
const fmt = (values: number[]) => values.map((v) => v.toFixed(0)).join(', ');
console.log(`k8s-on-k8s (node crypto + node-forge): median ${a.toFixed(0)} ms  [${fmt(oursMs)}]`);
console.log(`openssl CLI, same keys and certs:      median ${b.toFixed(0)} ms  [${fmt(opensslMs)}]`);
console.log(`ratio k8s-on-k8s / openssl: ${(a / b).toFixed(2)} (below 1 = faster)`);
