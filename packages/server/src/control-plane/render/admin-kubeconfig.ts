import { renderKubeconfig } from '@k8s-on-k8s/shared';
import type { ControlPlanePki } from '../pki.js';
import { publicApiUrl, type ControlPlaneSpec } from '../spec.js';

/** The hosted cluster's admin kubeconfig (system:masters), pointing at the public API URL. */
export function renderAdminKubeconfig(
  spec: ControlPlaneSpec,
  pki: Pick<ControlPlanePki, 'ca' | 'admin'>,
): string {
  return renderKubeconfig({
    clusterName: spec.name,
    server: publicApiUrl(spec),
    caPem: pki.ca.certPem,
    userName: `${spec.name}-admin`,
    credentials: { clientCertPem: pki.admin.certPem, clientKeyPem: pki.admin.keyPem },
  });
}
