/**
 * Run as a separate process by datapath.test.ts: loads lxc.o with a pin root
 * (creating and pinning its maps), writes one policy entry and one endpoint
 * entry, and exits, so the parent can check that they outlived us.
 */
import { ensureBpffsMounted } from '../../src/datapath/bpffs.js';
import { SluiceDirection, SluicePolicyAction } from '../../src/datapath/generated/abi.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import { endpointEntry } from '../../src/datapath/maps/endpoints.js';
import { policyKey } from '../../src/datapath/maps/policy-v3.js';

const pinRoot = process.argv[2];
if (pinRoot) {
  ensureBpffsMounted();
  const lxc = loadLxc({ pinRoot });
  lxc.maps.policy.update(policyKey({ endpointId: 77, remoteIdentity: 7777, direction: SluiceDirection.EGRESS }),
    { action: SluicePolicyAction.ALLOW, ruleId: 7 });
  lxc.maps.endpoints.update(77, endpointEntry({ ingress: false, egress: true }, 1));
  lxc.close();
  process.stdout.write('written\n');
}
