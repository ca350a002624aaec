/** src/policy/protocols.ts: the one protocol table, from enum sluice_ip_proto. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { carriesPorts, IP_PROTOCOL, ipProtocolName, PORT_PROTOCOL_NAMES } from '../../src/policy/protocols.js';

test('protocol numbers are IANA\'s', () => {
  assert.deepEqual({ ...IP_PROTOCOL }, { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 });
});

test('names and numbers round-trip; a protocol without a name is IP(n)', () => {
  for (const [name, n] of Object.entries(IP_PROTOCOL)) assert.equal(ipProtocolName(n), name);
  assert.equal(ipProtocolName(47), 'IP(47)');
  assert.equal(ipProtocolName(0), 'IP(0)');
});

test('TCP, UDP and SCTP carry ports; ICMP and unnamed protocols do not', () => {
  assert.deepEqual([...PORT_PROTOCOL_NAMES], ['TCP', 'UDP', 'SCTP']);
  assert.deepEqual(Object.values(IP_PROTOCOL).filter(carriesPorts).map(ipProtocolName), ['TCP', 'UDP', 'SCTP']);
  assert.equal(carriesPorts(IP_PROTOCOL.ICMP), false);
  assert.equal(carriesPorts(47), false);
});
