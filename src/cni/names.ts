/**
 * Names and addresses derived from the attachment (containerId, ifname), so
 * that every invocation — a DEL without prevResult, a rerun ADD after a crash,
 * GC — finds what an earlier one made without any state of its own:
 *
 *   host veth  "lxc" + 11 hex digits of sha256(containerId/ifname)  (14 ≤ 15 bytes)
 *   MACs       locally administered unicast, from the same hash
 *   alias      "sluice " + the full hash, on the host veth: marks it as this
 *              attachment's, so a rerun ADD, DEL, GC or the agent's sweep
 *              never takes another's veth for its own
 *
 * 44 bits of hash: two attachments on one node collide with probability
 * ~n²/2⁴⁵ (5e-8 for 1,000 pods); ADD then fails with "file exists", never
 * takes over another pod's veth (see wiring.ts).
 */
import { createHash } from 'node:crypto';
import type { Attachment } from './config.js';

export const HOST_VETH_PREFIX = 'lxc';

/** Link-local gateway every pod routes through; answered by a static neighbour entry (no ARP). */
export const GATEWAY_V4 = '169.254.1.1';

export interface AttachmentNames {
  readonly hostIfname: string;
  readonly hostMac: string;
  readonly podMac: string;
}

export const VETH_ALIAS_PREFIX = 'sluice ';

/** The alias that marks a host veth as this attachment's. */
export function vethAlias(a: Attachment): string {
  return `${VETH_ALIAS_PREFIX}${attachmentHash(a).toString('hex')}`;
}

export function attachmentNames(a: Attachment): AttachmentNames {
  const h = attachmentHash(a);
  return {
    hostIfname: `${HOST_VETH_PREFIX}${h.toString('hex').slice(0, 11)}`,
    hostMac: mac(0x06, h.subarray(8, 13)),
    podMac: mac(0x02, h.subarray(16, 21)),
  };
}

function attachmentHash(a: Attachment): Buffer {
  return createHash('sha256').update(`${a.containerId}/${a.ifname}`).digest();
}

function mac(first: number, rest: Buffer): string {
  return [first, ...rest].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
