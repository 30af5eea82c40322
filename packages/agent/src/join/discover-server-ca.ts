import { X509Certificate } from 'node:crypto';
import { connect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { caCertHash, JoinError } from '@k8s-on-k8s/shared';

/** The CA the join server presented, once it has passed the pin (or the pin was waived). */
export interface DiscoveredCa {
  readonly caPem: string;
  readonly caCertHash: string;
}

/**
 * Opens TLS to the join server without trusting anything yet, takes the CA from the chain it
 * presents, and checks that CA's SubjectPublicKeyInfo SHA-256 against the pin (kubeadm's
 * --discovery-token-ca-cert-hash scheme). Nothing secret is sent on this connection; the caller
 * then talks to the server through a client that trusts only this CA, which verifies the server
 * certificate and host name before the token leaves the machine.
 */
export async function discoverServerCa(
  serverUrl: URL,
  expectedHash: string | undefined,
  timeoutMs = 10_000,
): Promise<DiscoveredCa> {
  const chain = await fetchPresentedChain(serverUrl, timeoutMs);
  const cas = chain.filter((cert) => cert.ca || cert.issuer === cert.subject);
  const candidates = cas.length > 0 ? cas : chain.slice(-1);
  const hashed = candidates.map((cert) => ({ pem: cert.toString(), hash: caCertHash(cert.toString()) }));
  if (expectedHash === undefined) {
    const top = hashed[hashed.length - 1];
    if (top === undefined)
      throw new JoinError('CA_PIN_MISMATCH', `${serverUrl.host} presented no certificate`);
    return { caPem: top.pem, caCertHash: top.hash };
  }
  const match = hashed.find((c) => c.hash === expectedHash);
  if (match === undefined) {
    const presented = hashed.map((c) => c.hash).join(', ') || 'none';
    throw new JoinError(
      'CA_PIN_MISMATCH',
      `the server presented CA with hash ${presented}, expected ${expectedHash}`,
      {
        hint: 'check --ca-cert-hash against the one `k8s-on-k8s token create` printed; if they match, something between you and the server is intercepting TLS',
      },
    );
  }
  return { caPem: match.pem, caCertHash: match.hash };
}

async function fetchPresentedChain(serverUrl: URL, timeoutMs: number): Promise<X509Certificate[]> {
  const host = serverUrl.hostname.replace(/^\[|\]$/g, '');
  const port = Number(serverUrl.port || '443');
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      // SNI only for names; an IP literal is not a valid server_name (RFC 6066 §3).
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
      // Verification happens against the pinned CA, after this; the chain is all we take here.
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    socket.once('secureConnect', () => {
      const chain: X509Certificate[] = [];
      let cert: DetailedPeerCertificate | PeerCertificate | undefined = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (cert !== undefined && 'raw' in cert && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        chain.push(new X509Certificate(cert.raw));
        cert = 'issuerCertificate' in cert ? cert.issuerCertificate : undefined;
      }
      socket.destroy();
      resolve(chain);
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(unreachable(serverUrl, new Error(`no TLS handshake within ${timeoutMs}ms`)));
    });
    socket.once('error', (error: Error) => {
      reject(unreachable(serverUrl, error));
    });
  });
}

function unreachable(serverUrl: URL, cause: Error): JoinError {
  return new JoinError(
    'SERVER_UNREACHABLE',
    `cannot reach the join server at ${serverUrl.origin}: ${cause.message}`,
    {
      cause,
      hint: 'check --server (host and port), DNS, and that the join server is running and exposed',
    },
  );
}
