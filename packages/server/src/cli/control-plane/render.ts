// `k8s-on-k8s render`: the objects create would apply, as YAML, with no cluster.
import { parseFlags } from '@k8s-on-k8s/shared';
import { completeControlPlanePki } from '../../control-plane/pki.js';
import { formatObjectsYaml, renderControlPlane } from '../../control-plane/render/control-plane.js';
import { renderHostedAssets } from '../../control-plane/render/hosted-assets.js';
import { buildControlPlaneSpec, publicApiUrl, publicJoinUrl } from '../../control-plane/spec.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';
import { HELP_FLAG, SPEC_FLAGS, SPEC_HELP, printHelp, specInputFromFlags } from './flags.js';

export const RENDER_HELP = `Usage: k8s-on-k8s render NAME -n NS --host API_HOST [flags] > control-plane.yaml

Prints what create would apply, as YAML, without touching a cluster (a fresh PKI is generated into
the Secrets, so keep the output as secret as they are). With --expose nodeport give
--api-node-port and --join-node-port, since the join server's flags name them.

Flags:
${SPEC_HELP}
  --hosted-assets           print the hosted-cluster objects (RBAC, kube-proxy, CNI, CoreDNS) instead
`;

/** `k8s-on-k8s render`. */
export async function runRender(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { ...SPEC_FLAGS, ...HELP_FLAG, 'hosted-assets': { type: 'boolean' } },
    true,
  );
  if (values.help === true) return printHelp(deps, RENDER_HELP);
  const spec = buildControlPlaneSpec(specInputFromFlags(positionals, values));
  if (values['hosted-assets'] === true) {
    deps.stdout(formatObjectsYaml(renderHostedAssets(spec)).trimEnd());
    return 0;
  }
  // Fail on a missing NodePort before spending time on keys.
  publicApiUrl(spec);
  publicJoinUrl(spec);
  const { pki } = await completeControlPlanePki(spec, {}, { now: deps.now });
  deps.stdout(formatObjectsYaml(renderControlPlane(spec, pki)).trimEnd());
  return 0;
}
