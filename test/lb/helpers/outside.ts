/**
 * A client outside every node of a cluster lab: a namespace of the lab's own
 * (sluice-<lab>-outside, so `lab down` and the leftover scan know it) plugged
 * into the fabric's bridge with an address of the fabric no node holds. Its
 * packets reach a node's fabric device as any machine's on the nodes' network
 * would: what a NodePort or an external IP is for.
 */
import { FABRIC_MTU } from '../../../src/lab/cluster/fabric.js';
import { fabricNetnsName, netnsPrefix } from '../../../src/lab/names.js';
import { inNetns, sh } from '../../lab/helpers.js';

/** The outside client's address on the fabric (nodes are 172.30.0.<10+k>, the gateway .1). */
export const OUTSIDE_IP = '172.30.0.200';
const BRIDGE = 'br0';
const PORT = 'out0';

export interface OutsideClient {
  readonly netns: string;
  readonly ip: string;
  remove(): Promise<void>;
}

async function must(what: string, p: Promise<{ code: number; stderr: string }>): Promise<void> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr.trim()}`);
}

export async function addOutsideClient(lab: string): Promise<OutsideClient> {
  const netns = `${netnsPrefix(lab)}outside`;
  const fabric = fabricNetnsName(lab);
  const remove = async (): Promise<void> => {
    // Deleting the namespace takes its end of the veth, and with it the bridge port (same MTU as the fabric's, so the bridge keeps its own).
    await sh('ip', ['netns', 'delete', netns]);
  };
  try {
    await must(`netns ${netns}`, sh('ip', ['netns', 'add', netns]));
    await must('lo', inNetns(netns, ['ip', 'link', 'set', 'lo', 'up']));
    await must('veth', inNetns(fabric, ['ip', 'link', 'add', PORT, 'mtu', String(FABRIC_MTU), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(FABRIC_MTU), 'netns', netns]));
    await must('bridge port', inNetns(fabric, ['ip', 'link', 'set', PORT, 'master', BRIDGE, 'up']));
    await must('address', inNetns(netns, ['ip', 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']));
    await must('eth0 up', inNetns(netns, ['ip', 'link', 'set', 'eth0', 'up']));
  } catch (e) {
    await remove();
    throw e;
  }
  return { netns, ip: OUTSIDE_IP, remove };
}
