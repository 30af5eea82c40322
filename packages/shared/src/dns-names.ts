// The name rules of Kubernetes (apimachinery's validation.IsDNS1123Label, IsDNS1035Label and
// IsDNS1123Subdomain), stated once for every program: a namespace is a DNS-1123 label, a name that
// becomes a Service name must also start with a letter (DNS-1035), and Node names and host names
// are DNS-1123 subdomains.

/** At most this many characters in a label (namespace, Service name, each part of a host name). */
export const DNS_LABEL_MAX_LENGTH = 63;
/** At most this many characters in a subdomain (Node name, host name). */
export const DNS_SUBDOMAIN_MAX_LENGTH = 253;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** True for a DNS-1123 label, the rule for namespace names: `team-a`, `1st`. */
export function isDns1123Label(text: string, maxLength = DNS_LABEL_MAX_LENGTH): boolean {
  return text.length <= maxLength && DNS1123_LABEL.test(text);
}

/** True for a DNS-1035 label, the rule for Service names: like DNS-1123 but starting with a letter. */
export function isDns1035Label(text: string, maxLength = DNS_LABEL_MAX_LENGTH): boolean {
  return text.length <= maxLength && DNS1035_LABEL.test(text);
}

/** True for a DNS-1123 subdomain, the rule for Node names and DNS names: `worker-1.example.com`. */
export function isDns1123Subdomain(text: string): boolean {
  return (
    text.length > 0 &&
    text.length <= DNS_SUBDOMAIN_MAX_LENGTH &&
    text.split('.').every((label) => isDns1123Label(label))
  );
}
