import { DNS_LABEL_MAX_LENGTH, DNS_SUBDOMAIN_MAX_LENGTH, isDns1123Label } from './dns-names.js';
import { ValidationError } from './errors.js';

// Node names become object names, certificate subjects (system:node:<name>) and file names on
// the worker, so they must be DNS-1123 subdomains, the rule the apiserver applies to Node names.

const MAX_LENGTH = DNS_SUBDOMAIN_MAX_LENGTH;
const MAX_LABEL_LENGTH = DNS_LABEL_MAX_LENGTH;

function reject(name: string, rule: string): never {
  throw new ValidationError(
    'INVALID_NODE_NAME',
    `Expected the node name to be a DNS-1123 subdomain (${rule}), got ${JSON.stringify(name)}`,
    { hint: 'Use lowercase letters, digits, "-" and ".", e.g. worker-1.example.com' },
  );
}

/** Returns the name if it is a valid Kubernetes Node name (DNS-1123 subdomain), else throws naming the rule it breaks. */
export function validateNodeName(name: string): string {
  if (name.length === 0) reject(name, 'must not be empty');
  if (name.length > MAX_LENGTH) reject(name, `at most ${MAX_LENGTH} characters, got ${name.length}`);
  for (const label of name.split('.')) {
    if (label.length === 0) reject(name, 'no empty parts between dots, and no leading or trailing dot');
    if (label.length > MAX_LABEL_LENGTH) {
      reject(name, `each dot-separated part at most ${MAX_LABEL_LENGTH} characters`);
    }
    if (!isDns1123Label(label)) {
      reject(name, 'only lowercase letters, digits, "-" and ".", starting and ending with a letter or digit');
    }
  }
  return name;
}
