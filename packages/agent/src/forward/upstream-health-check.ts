// Active health checks of one upstream: a TCP connect, or GET /readyz over TLS verified with the
// cluster CA. The forwarder schedules them; these functions only answer "is it up right now".
import { connect as connectTcp, isIP } from 'node:net';
import { request } from 'node:https';
import type { HostPort } from '@k8s-on-k8s/shared';

/** How an upstream is probed; `https` needs the CA that signed the apiserver's serving cert. */
export type HealthCheck = { readonly kind: 'tcp' } | { readonly kind: 'https'; readonly ca: string };

/** Probes an upstream once; resolves true when healthy, never rejects. */
export function checkUpstream(address: HostPort, check: HealthCheck, timeoutMs: number): Promise<boolean> {
  return check.kind === 'tcp' ? checkTcp(address, timeoutMs) : checkReadyz(address, check.ca, timeoutMs);
}

function checkTcp(address: HostPort, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: address.host, port: address.port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

// kube-apiserver answers /readyz to anonymous clients by default (the system:public-info-viewer
// ClusterRole), and answers 500 while it is starting or cannot reach etcd: only 200 counts.
function checkReadyz(address: HostPort, ca: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: address.host,
        port: address.port,
        path: '/readyz',
        method: 'GET',
        ca,
        // An IP upstream is checked against the certificate's IP SANs; SNI must not be an IP.
        servername: isIP(address.host) === 0 ? address.host : '',
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => {
      resolve(false);
    });
    req.end();
  });
}
