import { invalidArgument } from '@k8s-on-k8s/shared';

// An image reference as the container runtime parses it (github.com/distribution/reference): an
// optional registry (it has a dot or a port, or is localhost), lowercase path components, an
// optional tag and an optional digest.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const REGISTRY = `(?:(?:localhost|${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})+)(?::[0-9]+)?|${DOMAIN_COMPONENT}:[0-9]+)`;
const IMAGE_REFERENCE = new RegExp(
  `^(?:${REGISTRY}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`,
);

/** Returns `text` if it is an image reference; the error names `field`. */
export function imageReference(text: string, field: string): string {
  const name = text.replace(/@.*$/, '').replace(/:[\w][\w.-]*$/, '');
  if (IMAGE_REFERENCE.test(text) && name.length <= 255) return text;
  throw invalidArgument(
    `Expected ${field} to be an image reference like registry.example/k8s-join-server:v1 (lowercase repository, optional :tag and @sha256:digest), got ${JSON.stringify(text)}`,
  );
}
