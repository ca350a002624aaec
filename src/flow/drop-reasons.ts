/**
 * Sluice's drop reasons (the one C enum, through the generated ABI) as
 * Hubble's flow.DropReason values, so Hubble's clients and metrics name them.
 * A Sluice reason with no Hubble counterpart reports DROP_REASON_UNKNOWN; its
 * own name still reaches the flow's Summary and drop_reason. Pure.
 */
import { SluiceDropReason, sluiceDropReasonName } from '../datapath/generated/abi.js';

/** flow.DropReason names by number, for the values Sluice reports. */
export const HUBBLE_DROP_REASON_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'DROP_REASON_UNKNOWN'],
  [132, 'INVALID_SOURCE_IP'],
  [133, 'POLICY_DENIED'],
  [134, 'INVALID_PACKET_DROPPED'],
  [135, 'CT_TRUNCATED_OR_INVALID_HEADER'],
  [139, 'UNSUPPORTED_L3_PROTOCOL'],
  [142, 'UNKNOWN_L4_PROTOCOL'],
  [151, 'STALE_OR_UNROUTABLE_IP'],
  [171, 'INVALID_IDENTITY'],
  [181, 'POLICY_DENY'],
]);

const BY_SLUICE: ReadonlyMap<number, number> = new Map([
  [SluiceDropReason.POLICY_DENIED, 133],
  [SluiceDropReason.INVALID_L2, 134],
  [SluiceDropReason.INVALID_IP, 134],
  [SluiceDropReason.INVALID_L4, 135],
  [SluiceDropReason.UNSUPPORTED_L3, 139],
  [SluiceDropReason.SPOOFED_SOURCE, 132],
  [SluiceDropReason.CT_INVALID, 135],
  [SluiceDropReason.FRAG_UNKNOWN, 134],
]);

/** The flow.DropReason number for a Sluice drop reason (0 when Hubble has none). */
export function hubbleDropReason(sluiceReason: number): number {
  return BY_SLUICE.get(sluiceReason) ?? 0;
}

/** "POLICY_DENIED", or "DROP_REASON_UNKNOWN" / the number for values outside the table. */
export function hubbleDropReasonName(n: number): string {
  return HUBBLE_DROP_REASON_NAMES.get(n) ?? String(n);
}

/** The flow.DropReason number of a name, for filters given by name. */
export function hubbleDropReasonByName(name: string): number | undefined {
  for (const [n, v] of HUBBLE_DROP_REASON_NAMES) if (v === name) return n;
  return undefined;
}

export { sluiceDropReasonName };
