/**
 * One datapath event as a line a person can read: who talked to whom, what
 * the datapath did and why. Names come from a resolver so the same formatter
 * serves the lab (pod names from its state) and, later, the agent (pods and
 * namespaces from the API server).
 */
import { formatIpv4 } from '../policy/cidr.js';
import { carriesPorts, IP_PROTOCOL, ipProtocolName } from '../policy/protocols.js';
import {
  SluiceDirection,
  SluiceEventFlags,
  SluiceEventType,
  sluiceDropReasonName,
  type SluiceEvent,
} from '../datapath/generated/abi.js';

/** A name for an address, when one is known (e.g. "lab/a"). */
export type AddressNamer = (ipv4: number) => string | undefined;

/** "10.0.0.2:80 (a, id 256)" or "10.0.0.2 (a, id 256)" for port-less protocols. */
function endpoint(addr: number, port: number, identity: number, protocol: number, name: AddressNamer): string {
  const host = formatIpv4(addr);
  const withPort = carriesPorts(protocol) ? `${host}:${port}` : host;
  const who = name(addr);
  return `${withPort} (${who ? `${who}, ` : ''}id ${identity})`;
}

/** Event flags worth a word in a line, in the order they are shown. */
const FLAG_NOTES: ReadonlyArray<readonly [number, string]> = [
  [SluiceEventFlags.CT_NEW, 'new'],
  [SluiceEventFlags.CT_ESTABLISHED, 'established'],
  [SluiceEventFlags.CT_REPLY, 'reply'],
  [SluiceEventFlags.CT_RELATED, 'related'],
  [SluiceEventFlags.CT_RECHECKED, 'policy changed'],
  [SluiceEventFlags.LATER_FRAG, 'fragment'],
];

/** Single-line rendering; timestamp is left to the caller (ktime is not wall time). */
export function formatEvent(ev: SluiceEvent, name: AddressNamer = () => undefined): string {
  const verdict = ev.eventType === SluiceEventType.DROP ? 'DROPPED' : 'FORWARDED';
  const dir = ev.direction === SluiceDirection.INGRESS ? 'to-pod' : 'from-pod';
  const proto = ipProtocolName(ev.protocol);
  const icmp = ev.protocol === IP_PROTOCOL.ICMP ? ` type ${ev.sport} code ${ev.dport}` : '';
  const parts = [
    verdict.padEnd(9),
    `${endpoint(ev.saddr, ev.sport, ev.srcIdentity, ev.protocol, name)} -> ${endpoint(ev.daddr, ev.dport, ev.dstIdentity, ev.protocol, name)}`,
    `${proto}${icmp}`,
    `${dir} endpoint ${ev.endpointId}`,
  ];
  if (ev.eventType === SluiceEventType.DROP) parts.push(`reason ${sluiceDropReasonName(ev.dropReason)}`);
  if (ev.ruleId !== 0) parts.push(`rule ${ev.ruleId}`);
  const notes = FLAG_NOTES.filter(([bit]) => ev.flags & bit).map(([, note]) => note);
  if (notes.length) parts.push(`[${notes.join(',')}]`);
  return parts.join('  ');
}
