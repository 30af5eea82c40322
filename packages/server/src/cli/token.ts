import { ValidationError, parseFlags, type TokenInfo, invalidArgument } from '@k8s-on-k8s/shared';
import { JoinServerAdminClient, type CreateTokenInput } from './join-server-admin-client.js';
import { loadKubeConfig } from '../kube/kubeconfig.js';
import { formatTable } from './table.js';

// `k8s-on-k8s token create|list|revoke`: the admin's side of join tokens, talking to a join
// server with the credentials of a hosted-cluster kubeconfig.

export const TOKEN_HELP = `Usage: k8s-on-k8s token <create|list|revoke ID> --server URL [--kubeconfig FILE] [flags]

Mints, lists and revokes the join tokens of a hosted cluster's join server. The kubeconfig is one
of the hosted cluster: its CA verifies the join server, and its user must be in system:masters
(client certificate) or be allowed to create/list/delete jointokens.k8s-on-k8s.io. A bearer token
must be minted for the audience k8s-join-server (a token for the apiserver is refused), e.g.
  kubectl --kubeconfig demo.kubeconfig create token NAME -n NS --audience k8s-join-server

Flags:
  --server URL            the join server, e.g. https://join.example:8443 (required)
  --kubeconfig FILE       hosted-cluster kubeconfig (default $KUBECONFIG or ~/.kube/config)
  --ca-cert FILE          CA of the join server's certificate, if the kubeconfig has none
  --output text|json      output format (default text)
create only:
  --ttl DURATION          how long the token is valid (default 1h; the server caps it)
  --uses N                how many joins it allows; 0 = unlimited (default 1)
  --node-name NAME        only a node of this name may join with it
  --description TEXT      shown by list
  --label KEY=VALUE       label for nodes joining with it; repeatable
  --taint KEY[=VALUE]:EFFECT  taint for nodes joining with it; repeatable
`;

/** What the token command needs from the process. */
export interface TokenCommandDeps {
  readonly stdout: (text: string) => void;
  readonly readFile: (path: string) => Promise<string>;
}

function parseLabel(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw invalidArgument(`Expected --label to be KEY=VALUE, got ${JSON.stringify(text)}`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

const TAINT = /^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/;

function parseTaint(text: string): NonNullable<CreateTokenInput['taints']>[number] {
  const match = TAINT.exec(text);
  if (match?.[1] === undefined || match[3] === undefined) {
    throw invalidArgument(
      `Expected --taint to be KEY[=VALUE]:EFFECT with EFFECT NoSchedule, PreferNoSchedule or NoExecute, got ${JSON.stringify(text)}`,
    );
  }
  const taint: NonNullable<CreateTokenInput['taints']>[number] = {
    key: match[1],
    effect: match[3] as 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute',
  };
  if (match[2] !== undefined) taint.value = match[2];
  return taint;
}

function formatTokens(tokens: readonly TokenInfo[]): string {
  return formatTable([
    ['ID', 'EXPIRES', 'USES LEFT', 'STATE', 'NODE', 'DESCRIPTION'],
    ...tokens.map((t) => [
      t.id,
      t.expiresAt,
      t.usesLeft === null ? 'unlimited' : `${t.usesLeft}/${t.usesTotal}`,
      t.revoked ? 'revoked' : 'active',
      t.nodeName ?? '-',
      t.description ?? '',
    ]),
  ]).join('\n');
}

/** Runs `k8s-on-k8s token ...`; resolves with the exit code. */
export async function runTokenCommand(argv: readonly string[], deps: TokenCommandDeps): Promise<number> {
  const parsed = parseFlags(
    argv,
    {
      server: { type: 'string' },
      kubeconfig: { type: 'string' },
      'ca-cert': { type: 'string' },
      output: { type: 'string' },
      ttl: { type: 'string' },
      uses: { type: 'string' },
      'node-name': { type: 'string' },
      description: { type: 'string' },
      label: { type: 'string', multiple: true },
      taint: { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
    true,
  );
  const { values, positionals } = parsed;
  const [action, ...rest] = positionals;
  if (values.help === true || action === undefined) {
    deps.stdout(TOKEN_HELP);
    return values.help === true ? 0 : 2;
  }
  if (action !== 'create' && action !== 'list' && action !== 'revoke') {
    throw invalidArgument(
      `Expected the token action to be create, list or revoke, got ${JSON.stringify(action)}`,
    );
  }
  if (action === 'revoke' ? rest.length !== 1 : rest.length !== 0) {
    throw invalidArgument(
      action === 'revoke'
        ? 'Expected exactly one token id: k8s-on-k8s token revoke ID'
        : `Unexpected argument ${JSON.stringify(rest[0])}`,
    );
  }
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json')
    throw invalidArgument(`Expected --output to be text or json, got ${JSON.stringify(output)}`);
  if (values.server === undefined)
    throw invalidArgument(
      'Missing --server: give the join server URL, e.g. --server https://join.example:8443',
    );
  if (!/^https:\/\/[^/\s]+\/?$/.test(values.server)) {
    throw invalidArgument(
      `Expected --server to be https://HOST[:PORT], got ${JSON.stringify(values.server)}`,
    );
  }
  const kubeConfig = loadKubeConfig({ path: values.kubeconfig });
  const source =
    values.kubeconfig === undefined
      ? 'the kubeconfig ($KUBECONFIG or ~/.kube/config)'
      : `--kubeconfig ${JSON.stringify(values.kubeconfig)}`;
  let caPem: string | undefined;
  if (values['ca-cert'] !== undefined) {
    try {
      caPem = await deps.readFile(values['ca-cert']);
    } catch (cause) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Cannot read --ca-cert ${JSON.stringify(values['ca-cert'])}`,
        { cause },
      );
    }
  }
  const client = await JoinServerAdminClient.fromKubeConfig(values.server, kubeConfig, source, caPem);
  const print = (value: unknown, text: string): void => {
    deps.stdout(output === 'json' ? JSON.stringify(value, null, 2) : text);
  };
  try {
    if (action === 'create') {
      const input: CreateTokenInput = {};
      if (values.ttl !== undefined) input.ttl = values.ttl;
      if (values.uses !== undefined) {
        if (!/^\d{1,15}$/.test(values.uses)) {
          throw invalidArgument(
            `Expected --uses to be a whole number (0 = unlimited), got ${JSON.stringify(values.uses)}`,
          );
        }
        input.uses = Number(values.uses);
      }
      if (values['node-name'] !== undefined) input.nodeName = values['node-name'];
      if (values.description !== undefined) input.description = values.description;
      if (values.label !== undefined) input.labels = Object.fromEntries(values.label.map(parseLabel));
      if (values.taint !== undefined) input.taints = values.taint.map(parseTaint);
      const created = await client.createToken(input);
      print(
        created,
        [
          `join token ${created.id} (shown only once), valid until ${created.expiresAt}, ${created.usesLeft === null ? 'unlimited uses' : `${created.usesLeft} use${created.usesLeft === 1 ? '' : 's'}`}:`,
          '',
          `  ${created.token}`,
          '',
          'On the worker, run:',
          '',
          `  ${created.joinCommand}`,
        ].join('\n'),
      );
    } else if (action === 'list') {
      const tokens = await client.listTokens();
      print(tokens, tokens.length === 0 ? 'no join tokens' : formatTokens(tokens));
    } else {
      const id = rest[0] ?? '';
      const revoked = await client.revokeToken(id);
      print(revoked, `join token ${revoked.id} revoked`);
    }
  } finally {
    await client.close();
  }
  return 0;
}
