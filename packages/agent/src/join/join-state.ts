import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '@k8s-on-k8s/shared';

/** What a join left on this machine, so `reset` removes exactly that and a re-run can be a no-op. */
const JoinStateSchema = z.object({
  apiVersion: z.literal('k8s-join.k8s-on-k8s.io/v1'),
  kind: z.literal('JoinState'),
  server: z.string(),
  caCertHash: z.string(),
  nodeName: z.string(),
  vip: z.string(),
  joinedAt: z.string(),
  files: z.array(z.string()),
  directories: z.array(z.string()),
  units: z.array(z.string()),
});
export type JoinState = z.infer<typeof JoinStateSchema>;

/** Reads the state file; undefined when there is none (never joined, or reset). */
export async function readJoinState(path: string): Promise<JoinState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = JoinStateSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

/** Writes the state file atomically, 0600 (it names the server and the pin, no credentials). */
export async function writeJoinState(
  path: string,
  state: Omit<JoinState, 'apiVersion' | 'kind'>,
): Promise<void> {
  const document: JoinState = { apiVersion: 'k8s-join.k8s-on-k8s.io/v1', kind: 'JoinState', ...state };
  await writeFileAtomic(path, `${JSON.stringify(document, null, 2)}\n`, 0o600);
}
