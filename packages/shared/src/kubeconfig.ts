import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { ValidationError } from './errors.js';

/** How a kubeconfig user authenticates: a client certificate, or a bearer token. */
export type KubeconfigCredentials =
  { readonly clientCertPem: string; readonly clientKeyPem: string } | { readonly token: string };

/** Everything needed to render a single-cluster, single-user kubeconfig. */
export interface KubeconfigSpec {
  readonly clusterName: string;
  readonly server: string;
  readonly caPem: string;
  readonly userName: string;
  readonly credentials: KubeconfigCredentials;
  readonly contextName?: string;
  readonly namespace?: string;
}

/** The credentials of a kubeconfig's current context, decoded. */
export interface ResolvedKubeconfig {
  readonly contextName: string;
  readonly clusterName: string;
  readonly userName: string;
  readonly server: string;
  readonly caPem: string | undefined;
  readonly clientCertPem: string | undefined;
  readonly clientKeyPem: string | undefined;
  readonly token: string | undefined;
  readonly namespace: string | undefined;
}

const kubeconfigSchema = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('Config'),
  clusters: z.array(
    z.object({
      name: z.string().min(1),
      cluster: z.object({
        server: z.string().url(),
        'certificate-authority-data': z.string().optional(),
        'certificate-authority': z.string().optional(),
        'insecure-skip-tls-verify': z.boolean().optional(),
        'tls-server-name': z.string().optional(),
      }),
    }),
  ),
  users: z.array(
    z.object({
      name: z.string().min(1),
      user: z.object({
        'client-certificate-data': z.string().optional(),
        'client-key-data': z.string().optional(),
        'client-certificate': z.string().optional(),
        'client-key': z.string().optional(),
        token: z.string().optional(),
      }),
    }),
  ),
  contexts: z.array(
    z.object({
      name: z.string().min(1),
      context: z.object({
        cluster: z.string().min(1),
        user: z.string().min(1),
        namespace: z.string().optional(),
      }),
    }),
  ),
  'current-context': z.string().min(1),
  preferences: z.record(z.unknown()).optional(),
});

/** A parsed, validated kubeconfig document. */
export type Kubeconfig = z.infer<typeof kubeconfigSchema>;

/** Renders a kubeconfig with embedded (base64) CA and credentials, as kubeadm writes them. */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  const contextName = spec.contextName ?? `${spec.userName}@${spec.clusterName}`;
  const user =
    'token' in spec.credentials
      ? { token: spec.credentials.token }
      : {
          'client-certificate-data': base64(spec.credentials.clientCertPem),
          'client-key-data': base64(spec.credentials.clientKeyPem),
        };
  const document: Kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: spec.clusterName,
        cluster: { server: spec.server, 'certificate-authority-data': base64(spec.caPem) },
      },
    ],
    users: [{ name: spec.userName, user }],
    contexts: [
      {
        name: contextName,
        context: {
          cluster: spec.clusterName,
          user: spec.userName,
          ...(spec.namespace === undefined ? {} : { namespace: spec.namespace }),
        },
      },
    ],
    'current-context': contextName,
    preferences: {},
  };
  return stringifyYaml(document);
}

/** Parses and validates a kubeconfig (YAML or JSON); errors name the field, never a credential. */
export function parseKubeconfig(text: string, source = 'kubeconfig'): Kubeconfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new ValidationError('INVALID_KUBECONFIG', `${source} is not valid YAML`, { cause });
  }
  const result = kubeconfigSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join('.') ?? '';
    throw new ValidationError(
      'INVALID_KUBECONFIG',
      `${source}: ${path === '' ? 'document' : path}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return result.data;
}

/** Resolves the current context of a kubeconfig into its server, CA and decoded credentials. */
export function resolveKubeconfig(config: Kubeconfig, source = 'kubeconfig'): ResolvedKubeconfig {
  const contextName = config['current-context'];
  const context = config.contexts.find((c) => c.name === contextName)?.context;
  if (context === undefined) {
    throw new ValidationError(
      'INVALID_KUBECONFIG',
      `${source}: current-context ${JSON.stringify(contextName)} is not defined`,
    );
  }
  const cluster = config.clusters.find((c) => c.name === context.cluster)?.cluster;
  if (cluster === undefined) {
    throw new ValidationError(
      'INVALID_KUBECONFIG',
      `${source}: cluster ${JSON.stringify(context.cluster)} is not defined`,
    );
  }
  const user = config.users.find((u) => u.name === context.user)?.user;
  if (user === undefined) {
    throw new ValidationError(
      'INVALID_KUBECONFIG',
      `${source}: user ${JSON.stringify(context.user)} is not defined`,
    );
  }
  return {
    contextName,
    clusterName: context.cluster,
    userName: context.user,
    server: cluster.server,
    caPem: decodeField(cluster['certificate-authority-data'], `${source}: certificate-authority-data`),
    clientCertPem: decodeField(user['client-certificate-data'], `${source}: client-certificate-data`),
    clientKeyPem: decodeField(user['client-key-data'], `${source}: client-key-data`),
    token: user.token,
    namespace: context.namespace,
  };
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function decodeField(value: string | undefined, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value.replace(/\s/g, ''))) {
    throw new ValidationError('INVALID_KUBECONFIG', `${what} is not base64`);
  }
  return Buffer.from(value, 'base64').toString('utf8');
}
