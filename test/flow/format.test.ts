/**
 * src/flow/format.ts: a datapath event as one line. Addresses, ports,
 * identities and names come from the event and the namer; protocol, reason
 * and flag words from the ABI's tables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceDirection, SluiceDropReason, SluiceEventFlags, SluiceEventType, SluiceVerdict, sluiceDropReasonName,
  type SluiceEvent,
} from '../../src/datapath/generated/abi.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { formatEvent } from '../../src/flow/format.js';
import { IP_PROTOCOL } from '../../src/policy/protocols.js';

const A = parseIpv4('10.0.0.2');
const B = parseIpv4('10.0.0.3');

/** A TCP drop from A:40000 to B:80, egress of endpoint 7; fields overridden per test. */
function event(over: Partial<SluiceEvent> = {}): SluiceEvent {
  return {
    timestampNs: 1n, saddr: A, daddr: B, sport: 40000, dport: 80, protocol: IP_PROTOCOL.TCP,
    eventType: SluiceEventType.DROP, verdict: SluiceVerdict.DROPPED, direction: SluiceDirection.EGRESS,
    srcIdentity: 256, dstIdentity: 257, endpointId: 7, ifindex: 3, pktLen: 60,
    dropReason: SluiceDropReason.POLICY_DENIED, flags: 0, ruleId: 0, ...over,
  };
}

const names = new Map([[A, 'lab/a'], [B, 'lab/b']]);
const namer = (addr: number): string | undefined => names.get(addr);

test('a drop: verdict first, both ends with port, name and identity, protocol, direction, endpoint, reason', () => {
  const line = formatEvent(event(), namer);
  const fields = line.split(/ {2,}/);
  assert.deepEqual(fields, [
    'DROPPED',
    '10.0.0.2:40000 (lab/a, id 256) -> 10.0.0.3:80 (lab/b, id 257)',
    'TCP',
    'from-pod endpoint 7',
    `reason ${sluiceDropReasonName(SluiceDropReason.POLICY_DENIED)}`,
  ]);
});

test('without a namer (or an unknown address) only the identity is shown', () => {
  assert.match(formatEvent(event()), /^DROPPED +10\.0\.0\.2:40000 \(id 256\) -> 10\.0\.0\.3:80 \(id 257\) /);
  assert.match(formatEvent(event({ daddr: parseIpv4('192.0.2.1') }), namer), / -> 192\.0\.2\.1:80 \(id 257\) /);
});

test('a forwarded trace: no reason; ingress reads to-pod; the deciding rule is named', () => {
  const line = formatEvent(event({ eventType: SluiceEventType.TRACE, verdict: SluiceVerdict.FORWARDED,
    direction: SluiceDirection.INGRESS, dropReason: SluiceDropReason.NONE, ruleId: 12 }), namer);
  assert.ok(line.startsWith('FORWARDED '), line);
  assert.ok(line.includes('  to-pod endpoint 7'), line);
  assert.ok(!line.includes('reason'), line);
  assert.ok(line.endsWith('  rule 12'), line);
});

test('UDP and SCTP show ports; ICMP shows type and code instead, other protocols neither', () => {
  for (const p of ['UDP', 'SCTP'] as const) {
    assert.ok(formatEvent(event({ protocol: IP_PROTOCOL[p] })).includes(`10.0.0.3:80 (id 257)  ${p}  `), p);
  }
  const icmp = formatEvent(event({ protocol: IP_PROTOCOL.ICMP, sport: 8, dport: 0 }));
  assert.ok(icmp.includes('10.0.0.2 (id 256) -> 10.0.0.3 (id 257)  ICMP type 8 code 0  '), icmp);
  const gre = formatEvent(event({ protocol: 47 }));
  assert.ok(gre.includes('10.0.0.2 (id 256) -> 10.0.0.3 (id 257)  IP(47)  '), gre);
});

test('conntrack and fragment flags become words in a fixed order; flags without a word are not shown', () => {
  const F = SluiceEventFlags;
  assert.ok(formatEvent(event({ flags: F.CT_NEW })).endsWith('  [new]'));
  assert.ok(formatEvent(event({ flags: F.LATER_FRAG | F.FRAGMENT | F.CT_REPLY | F.CT_RECHECKED }))
    .endsWith('  [reply,policy changed,fragment]'));
  assert.ok(formatEvent(event({ flags: F.CT_RELATED | F.CT_ESTABLISHED })).endsWith('  [established,related]'));
  assert.ok(!formatEvent(event({ flags: F.FRAGMENT | F.IP_OPTIONS })).includes('['));
});

test('an unknown drop reason is shown by number, not hidden', () => {
  assert.ok(formatEvent(event({ dropReason: 63 })).endsWith(`  reason ${sluiceDropReasonName(63)}`));
  assert.match(sluiceDropReasonName(63), /63/);
});
