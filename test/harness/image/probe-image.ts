// The image of the probe the end-to-end tests run in pods (test/images/probe): a DNS lookup, an
// in-cluster API call or an HTTP GET whose outcome is the pod's termination message, or a server.

/**
 * As `npm run build:images` names it; its tag is the probe's version (main.go's `const version`,
 * which build:images checks). Under localhost/, which no registry serves: a node runs the archive
 * imported with ctr or fails to pull, and never runs something else of the same name.
 */
export const PROBE_IMAGE = 'localhost/k8s-on-k8s/probe:v1';
