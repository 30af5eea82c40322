import { stringify as stringifyYaml } from 'yaml';

/** What first-boot user-data needs to install the agent and join. */
export interface UserDataSpec {
  readonly server: string;
  readonly caCertHash: string;
  /** The join token; it lands in a 0600 file on the worker, never on a command line. */
  readonly token: string;
  /** Where the worker downloads the k8s-join executable (an object store, a release, a mirror). */
  readonly agentUrl: string;
  /** sha256 hex of that executable: the download is refused unless it matches. */
  readonly agentSha256: string;
  readonly nodeName?: string;
  /** Extra `k8s-join join` flags, e.g. --kubelet-binary or --ignore-preflight-errors. */
  readonly extraJoinArgs?: readonly string[];
}

const AGENT_PATH = '/opt/bin/k8s-join';
const TOKEN_PATH = '/etc/k8s-join/token';
const JOIN_UNIT = 'k8s-join.service';
/** How long the first-boot join keeps retrying a busy or unreachable join server. */
const JOIN_RETRY = '15m';

function joinArgs(spec: UserDataSpec): string[] {
  return [
    AGENT_PATH,
    'join',
    `--server=${spec.server}`,
    `--ca-cert-hash=${spec.caCertHash}`,
    `--token-file=${TOKEN_PATH}`,
    // A fleet booting at once can meet a busy (429) or briefly failing (503) join server; the
    // agent retries those, as Retry-After says, and never a bad token or pin. Extra args may
    // override the budget (the last --retry wins).
    `--retry=${JOIN_RETRY}`,
    ...(spec.nodeName === undefined ? [] : [`--node-name=${spec.nodeName}`]),
    ...(spec.extraJoinArgs ?? []),
  ];
}

/**
 * The first-boot unit both formats install: join once (the state file marks success, so a reboot
 * does not join again), then delete the token file.
 */
export function renderJoinUnit(spec: UserDataSpec): string {
  return `[Unit]
Description=Join this machine to the hosted Kubernetes control plane (k8s-join, first boot)
Wants=network-online.target
After=network-online.target containerd.service
ConditionPathExists=!/var/lib/k8s-join/state.json

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${joinArgs(spec).join(' ')}
# Once joined the token has no business on disk; after a failure it stays, so a retry can use it
# (a failed join does not spend a use).
ExecStartPost=rm -f ${TOKEN_PATH}

[Install]
WantedBy=multi-user.target
`;
}

/**
 * A #cloud-config document: the token as a 0600 file, the agent downloaded and checked against
 * its sha256 before it is made executable, and the join unit enabled and started.
 */
export function renderCloudConfig(spec: UserDataSpec): string {
  const download = [
    'set -eu',
    'mkdir -p /opt/bin',
    `curl -fsSL --retry 10 --retry-connrefused -o ${AGENT_PATH}.download ${shellQuote(spec.agentUrl)}`,
    `echo '${spec.agentSha256}  ${AGENT_PATH}.download' | sha256sum -c -`,
    `chmod 0755 ${AGENT_PATH}.download`,
    `mv ${AGENT_PATH}.download ${AGENT_PATH}`,
  ].join('\n');
  const document = {
    write_files: [
      { path: TOKEN_PATH, permissions: '0600', owner: 'root:root', content: `${spec.token}\n` },
      {
        path: `/etc/systemd/system/${JOIN_UNIT}`,
        permissions: '0644',
        owner: 'root:root',
        content: renderJoinUnit(spec),
      },
    ],
    runcmd: [
      ['sh', '-c', download],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', JOIN_UNIT],
    ],
  };
  return `#cloud-config\n${stringifyYaml(document, { lineWidth: 0 })}`;
}

/**
 * An Ignition v3 config for Flatcar / Fedora CoreOS: Ignition itself downloads the agent and
 * verifies its hash, writes the token 0600, and enables the join unit.
 */
export function renderIgnition(spec: UserDataSpec): string {
  const config = {
    ignition: { version: '3.4.0' },
    storage: {
      files: [
        {
          path: AGENT_PATH,
          mode: 0o755,
          overwrite: true,
          contents: { source: spec.agentUrl, verification: { hash: `sha256-${spec.agentSha256}` } },
        },
        {
          path: TOKEN_PATH,
          mode: 0o600,
          overwrite: true,
          contents: { source: `data:,${encodeURIComponent(`${spec.token}\n`)}` },
        },
      ],
    },
    systemd: { units: [{ name: JOIN_UNIT, enabled: true, contents: renderJoinUnit(spec) }] },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
