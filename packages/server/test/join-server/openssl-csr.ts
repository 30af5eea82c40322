// CSRs made by a real openssl, as the kubelet's Go code makes them (a P-256 key and the subject,
// plus whatever `-addext` arguments ask for), for the approvers' unit tests.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const dir = mkdtempSync(join(tmpdir(), 'openssl-csr-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A PEM CSR for `subject` (openssl's /O=…/CN=… form) with a fresh key; `extraArgs` go to `openssl req`. */
export function opensslCsr(subject: string, extraArgs: readonly string[] = []): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyPath = join(dir, 'key.pem');
  writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return execFileSync('openssl', ['req', '-new', '-key', keyPath, '-subj', subject, ...extraArgs], {
    encoding: 'utf8',
  });
}
