// The thin I/O layer under the renderers: server-side apply with one field manager, and delete by
// the control plane's label. Errors are coded and name the object, never its data.
import {
  ApiException,
  KubernetesObjectApi,
  PatchStrategy,
  loadYaml,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { K8sOnK8sError, type ErrorCode } from '@k8s-on-k8s/shared';
import { FIELD_MANAGER } from '../contract.js';

/** `Secret team-a/dev-ca`, for progress lines and errors. */
export function describeObject(object: KubernetesObject): string {
  const { namespace, name } = object.metadata ?? {};
  return `${object.kind ?? '?'} ${namespace === undefined ? '' : `${namespace}/`}${name ?? '?'}`;
}

/**
 * Server-side applies `objects` in order (forcing ownership of the fields we render) and returns
 * what the apiserver stored. Applying unchanged objects writes nothing: no new resourceVersion.
 */
export async function applyObjects(
  kubeConfig: KubeConfig,
  objects: readonly KubernetesObject[],
  onApplied: (object: KubernetesObject) => void = () => undefined,
  fieldManager: string = FIELD_MANAGER,
): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const applied: KubernetesObject[] = [];
  for (const object of objects) {
    try {
      const stored = await client.patch(
        toClientModel(object),
        undefined,
        undefined,
        fieldManager,
        true,
        PatchStrategy.ServerSideApply,
      );
      applied.push(stored);
      onApplied(stored);
    } catch (error) {
      throw kubernetesError(`apply ${describeObject(object)}`, error);
    }
  }
  return applied;
}

/**
 * The renderers write objects in the API's JSON form (what `kubectl apply -f` reads and the golden
 * files show). client-node serializes from its own models, which name a few fields differently
 * (a NetworkPolicy rule's `from` is `_from`) and leave out any name they do not know: a rendered
 * `from` would be dropped and the rule would admit everyone. Its deserializer turns the JSON form
 * into the model (loadYaml reads JSON too), which the serializer writes back as the same JSON.
 */
function toClientModel(object: KubernetesObject): KubernetesObject {
  return loadYaml<KubernetesObject>(JSON.stringify(object));
}

/** One kind a control plane is made of, for listing and deleting by label. */
export interface ObjectKind {
  readonly apiVersion: string;
  readonly kind: string;
}

/** Lists the objects of `kind` in `namespace` (every namespace when undefined) that match `labelSelector`. */
export async function listObjects(
  kubeConfig: KubeConfig,
  kind: ObjectKind,
  namespace: string | undefined,
  labelSelector: string,
): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  try {
    const list = await client.list(
      kind.apiVersion,
      kind.kind,
      namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      labelSelector,
    );
    return list.items.map((item) => ({ ...item, apiVersion: kind.apiVersion, kind: kind.kind }));
  } catch (error) {
    throw kubernetesError(`list ${kind.kind} in ${namespace ?? 'all namespaces'} (${labelSelector})`, error);
  }
}

/** Reads one object, or undefined when it does not exist. */
export async function readObject<T extends KubernetesObject>(
  kubeConfig: KubeConfig,
  kind: ObjectKind,
  namespace: string,
  name: string,
): Promise<T | undefined> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  try {
    return await client.read<T>({ ...kind, metadata: { name, namespace } });
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw kubernetesError(`read ${kind.kind} ${namespace}/${name}`, error);
  }
}

/** Deletes every object of `kinds` matching `labelSelector` in `namespace`; returns what it deleted. */
export async function deleteObjects(
  kubeConfig: KubeConfig,
  kinds: readonly ObjectKind[],
  namespace: string,
  labelSelector: string,
  onDeleted: (object: KubernetesObject) => void = () => undefined,
): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const deleted: KubernetesObject[] = [];
  for (const kind of kinds) {
    for (const object of await listObjects(kubeConfig, kind, namespace, labelSelector)) {
      try {
        // Background: the Deployment's ReplicaSets and pods follow through garbage collection.
        await client.delete(object, undefined, undefined, undefined, undefined, 'Background');
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) continue;
        throw kubernetesError(`delete ${describeObject(object)}`, error);
      }
      deleted.push(object);
      onDeleted(object);
    }
  }
  return deleted;
}

/** Turns a client-node failure into a coded error with the apiserver's reason (never a request body). */
export function kubernetesError(what: string, error: unknown): K8sOnK8sError {
  if (error instanceof ApiException) {
    const status = error.code;
    const code: ErrorCode =
      status === 401
        ? 'UNAUTHENTICATED'
        : status === 403
          ? 'FORBIDDEN'
          : status === 404
            ? 'NOT_FOUND'
            : status === 409
              ? 'CONFLICT'
              : status === 422 || status === 400
                ? 'INVALID_REQUEST'
                : 'UPSTREAM_ERROR';
    return new K8sOnK8sError(code, `${what}: HTTP ${status}: ${apiMessage(error.body)}`, {
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new K8sOnK8sError('SERVER_UNREACHABLE', `${what}: ${message}`, {
    cause: error,
    hint: 'check --kubeconfig and --context, and that the cluster answers',
  });
}

function apiMessage(body: unknown): string {
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      return body.slice(0, 300);
    }
    return body.slice(0, 300);
  }
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') {
    return body.message;
  }
  return 'no message';
}
