// `k8s-on-k8s userdata`: flags → validated UserDataSpec → cloud-config or Ignition on stdout.
import { createHash } from 'node:crypto';
import {
  ValidationError,
  parseCaCertHash,
  parseFlags,
  parseJoinToken,
  validateNodeName,
  invalidArgument,
} from '@k8s-on-k8s/shared';
import { renderCloudConfig, renderIgnition, type UserDataSpec } from '../user-data/render.js';

export const USER_DATA_HELP = `Usage: k8s-on-k8s userdata --format cloud-config|ignition --server URL --ca-cert-hash sha256:HEX
                          --token-file FILE --agent-url URL (--agent-sha256 HEX | --agent-file PATH)

Prints first-boot user-data that installs k8s-join and joins the machine:
  cloud-config  for cloud-init (Ubuntu, Debian, most cloud images)
  ignition      Ignition v3 JSON for Flatcar and Fedora CoreOS
The token is written to /etc/k8s-join/token (0600) and passed with --token-file, never on a command
line; it is deleted once the join succeeds. The agent is downloaded from --agent-url and refused
unless its sha256 matches. Treat the output as a secret: it carries the join token.

Flags:
  --format FORMAT          cloud-config or ignition (required)
  --server URL             the join server, https://HOST:PORT (required)
  --ca-cert-hash HASH      sha256:<hex> of the cluster CA (from \`k8s-on-k8s token create\`)
  --token-file FILE        file holding the join token (from \`k8s-on-k8s token create\`)
  --agent-url URL          where workers download the k8s-join executable (npm run build:agent)
  --agent-sha256 HEX       its sha256 (packages/agent/dist/k8s-join-linux-x64.sha256)
  --agent-file PATH        or compute the sha256 from a local copy of the executable
  --node-name NAME         fix the Node name (default: the machine's hostname)
  --join-arg FLAG          extra flag for k8s-join join, repeatable (e.g. --join-arg=--wait)
  --help                   show this text`;

/** What the userdata command needs from the process. */
export interface UserDataCommandDeps {
  readonly out: (text: string) => void;
  readonly readFile: (path: string) => Promise<Buffer>;
}

/** Runs `k8s-on-k8s userdata`; resolves with the exit code. */
export async function runUserDataCommand(
  argv: readonly string[],
  deps: UserDataCommandDeps,
): Promise<number> {
  const { values } = parseFlags(argv, {
    format: { type: 'string' },
    server: { type: 'string' },
    'ca-cert-hash': { type: 'string' },
    'token-file': { type: 'string' },
    'agent-url': { type: 'string' },
    'agent-sha256': { type: 'string' },
    'agent-file': { type: 'string' },
    'node-name': { type: 'string' },
    'join-arg': { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    deps.out(USER_DATA_HELP);
    return 0;
  }
  const required = (flag: string, value: string | undefined): string => {
    if (value === undefined || value === '')
      throw invalidArgument(`Missing ${flag}`, {
        hint: 'run k8s-on-k8s userdata --help',
      });
    return value;
  };
  const format = required('--format', values.format);
  if (format !== 'cloud-config' && format !== 'ignition') {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected --format to be cloud-config or ignition, got ${JSON.stringify(format)}`,
    );
  }
  const server = parseUrl('--server', required('--server', values.server), ['https:']);
  const agentUrl = parseUrl('--agent-url', required('--agent-url', values['agent-url']), ['https:', 'http:']);
  const caCertHash = parseCaCertHash(required('--ca-cert-hash', values['ca-cert-hash']));
  const tokenPath = required('--token-file', values['token-file']);
  let tokenText: string;
  try {
    tokenText = (await deps.readFile(tokenPath)).toString('utf8').trim();
  } catch (cause) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Cannot read --token-file ${JSON.stringify(tokenPath)}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  const token = parseJoinToken(tokenText);

  let agentSha256: string;
  if ((values['agent-sha256'] === undefined) === (values['agent-file'] === undefined)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      'Give exactly one of --agent-sha256 HEX or --agent-file PATH',
    );
  }
  if (values['agent-file'] !== undefined) {
    const path = values['agent-file'];
    const bytes = await deps.readFile(path).catch((cause: unknown) => {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Cannot read --agent-file ${JSON.stringify(path)}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    });
    agentSha256 = createHash('sha256').update(bytes).digest('hex');
  } else {
    agentSha256 = (values['agent-sha256'] ?? '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(agentSha256)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Expected --agent-sha256 to be 64 hex digits, got ${JSON.stringify(values['agent-sha256'])}`,
      );
    }
  }
  const extra = values['join-arg'] ?? [];
  for (const arg of extra) {
    if (!/^--[a-z][a-z0-9-]*(=[^\s'"\\]*)?$/.test(arg)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Expected each --join-arg to be one flag like --wait or --kubelet-binary=/opt/bin/kubelet, got ${JSON.stringify(arg)}`,
      );
    }
  }
  const spec: UserDataSpec = {
    server: server.origin,
    caCertHash,
    token: `${token.id}.${token.secret}`,
    agentUrl: agentUrl.href,
    agentSha256,
    ...(values['node-name'] === undefined ? {} : { nodeName: validateNodeName(values['node-name']) }),
    extraJoinArgs: extra,
  };
  deps.out(format === 'cloud-config' ? renderCloudConfig(spec) : renderIgnition(spec));
  return 0;
}

function parseUrl(flag: string, text: string, protocols: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${flag} to be a URL, got ${JSON.stringify(text)}`,
    );
  }
  if (!protocols.includes(url.protocol) || /[\s'"\\]/.test(text)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${flag} to be a ${protocols.join(' or ')} URL, got ${JSON.stringify(text)}`,
    );
  }
  return url;
}
