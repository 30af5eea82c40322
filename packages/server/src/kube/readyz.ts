// Waits for a freshly created apiserver to answer `/readyz`, printing where it stands every few
// seconds: a new control plane takes a while (image pulls, etcd, the apiserver's post-start hooks).
import { request } from 'node:https';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';

/** Where to ask, as whom, how long, and the injected clock and sleep that make it testable. */
export interface WaitForReadyzOptions {
  /** https://host:port of the apiserver. */
  readonly url: string;
  readonly caPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** How often a progress line is printed while waiting. */
  readonly progressEveryMs?: number;
  readonly onProgress: (line: string) => void;
  /** Says why the server is not up yet (e.g. its pods' states); added to progress lines and the timeout. */
  readonly explain?: () => Promise<string | undefined>;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Resolves once `/readyz` answers 200; rejects with TIMEOUT (and the last answer) after timeoutMs. */
export async function waitForReadyz(options: WaitForReadyzOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = options.intervalMs ?? 1000;
  const progressEvery = options.progressEveryMs ?? 5000;
  const started = now();
  let lastProgress = started;
  let last = 'no answer yet';
  options.onProgress(`waiting for ${options.url}/readyz`);
  for (;;) {
    try {
      const answer = await getReadyz(options);
      if (answer.status === 200) {
        options.onProgress(`${options.url}/readyz: ok after ${formatSeconds(now() - started)}`);
        return;
      }
      last = `HTTP ${answer.status}${failedChecks(answer.body)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    const elapsed = now() - started;
    if (elapsed >= options.timeoutMs) {
      const why = await explain(options);
      throw new K8sOnK8sError(
        'TIMEOUT',
        `${options.url}/readyz did not answer ok within ${formatSeconds(options.timeoutMs)} (last: ${last})${why}`,
        { hint: 'check the control plane pods in the infra namespace (k8s-on-k8s status NAME -n NS)' },
      );
    }
    if (now() - lastProgress >= progressEvery) {
      lastProgress = now();
      options.onProgress(`  still waiting (${formatSeconds(elapsed)}): ${last}${await explain(options)}`);
    }
    await sleep(Math.min(interval, Math.max(0, options.timeoutMs - elapsed)));
  }
}

/**
 * Asks `/readyz` once (a controller's probe, which must not block its queue): ok, or what the
 * answer was — the failing checks of a 500, or why no answer came.
 */
export async function probeReadyz(
  options: Pick<WaitForReadyzOptions, 'url' | 'caPem' | 'clientCertPem' | 'clientKeyPem'>,
): Promise<{ readonly ok: boolean; readonly detail: string }> {
  try {
    const answer = await getReadyz(options);
    return answer.status === 200
      ? { ok: true, detail: 'ok' }
      : { ok: false, detail: `HTTP ${answer.status}${failedChecks(answer.body)}` };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

/** The explanation as a suffix, or nothing; a failing explanation must not hide the wait's own answer. */
async function explain(options: WaitForReadyzOptions): Promise<string> {
  const why = await options.explain?.().catch(() => undefined);
  return why === undefined ? '' : `; ${why}`;
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

/** `/readyz` lists failing checks as `[-]name failed`; those are the useful part of a 500. */
function failedChecks(body: string): string {
  const failed = [...body.matchAll(/^\[-\](\S+)/gm)].map((m) => m[1]);
  return failed.length === 0 ? '' : ` (not ready: ${failed.join(', ')})`;
}

function getReadyz(
  options: Pick<WaitForReadyzOptions, 'url' | 'caPem' | 'clientCertPem' | 'clientKeyPem'>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${options.url}/readyz?verbose`,
      {
        ca: options.caPem,
        cert: options.clientCertPem,
        key: options.clientKeyPem,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 65536) body += chunk;
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 5s')));
    req.on('error', reject);
    req.end();
  });
}
