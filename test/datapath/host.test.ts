/**
 * bpf/host.c from_fabric (BPF_PROG_TEST_RUN), loaded for a node whose
 * podCIDR is 10.0.1.0/24, its maps shared with lxc.o in one pin root as on a
 * node: a packet from another node's pod to a local pod passes; one for a
 * local pod whose source claims a local pod address drops with
 * NODE_SPOOFED_SOURCE, counted under that reason and reported as a drop
 * event naming both identities; a local-pod source to an address outside the
 * podCIDR (not for a local pod) passes, as do ARP, node-to-node and
 * VXLAN-encapsulated traffic; IPv6 drops (fail closed, as on the pods'
 * veths); with no podCIDR the check is off. No frame is changed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SluiceDirection, SluiceDropReason, SluiceEventType, type SluiceEvent } from '../../src/datapath/generated/abi.js';
import { loadHost, type HostProgram } from '../../src/datapath/host.js';
import { loadLxc, type LxcDatapath } from '../../src/datapath/lxc.js';
import { readEvents } from '../../src/datapath/maps/events.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { readCounter } from '../../src/datapath/maps/metrics.js';
import { testRun } from '../../src/datapath/test-run.js';
import type { RingBufferReader } from '../../src/datapath/api.js';
import { arpFrame, ethernet, ipv4Frame } from '../helpers/packet.js';
import { createTestPinRoot, removeTestPinRoot } from '../helpers/pins.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const LOCAL_POD = '10.0.1.5';
const OTHER_LOCAL_POD = '10.0.1.9';
const REMOTE_POD = '10.0.2.7';
const ID_LOCAL = 1000;
const ID_OTHER_LOCAL = 1002;
const ID_REMOTE = 1001;
const { INGRESS } = SluiceDirection;

let pinRoot: string;
let lxc: LxcDatapath;
let host: HostProgram;
let hostOff: HostProgram;
let reader: RingBufferReader;
const events: SluiceEvent[] = [];

before(() => {
  pinRoot = createTestPinRoot();
  lxc = loadLxc({ pinRoot });
  host = loadHost({ pinRoot, podCidr: '10.0.1.0/24' });
  hostOff = loadHost({ pinRoot, podCidr: undefined });
  lxc.maps.ipcache.updateBatch([
    [ipcacheKey(`${LOCAL_POD}/32`), { identity: ID_LOCAL, flags: 0 }],
    [ipcacheKey(`${OTHER_LOCAL_POD}/32`), { identity: ID_OTHER_LOCAL, flags: 0 }],
    [ipcacheKey(`${REMOTE_POD}/32`), { identity: ID_REMOTE, flags: 0 }],
  ]);
  reader = readEvents(lxc.maps.events, (e) => events.push(...e));
});

after(() => {
  reader?.stop();
  host?.close();
  hostOff?.close();
  lxc?.close();
  removeTestPinRoot(pinRoot);
});

function run(p: HostProgram, frame: Buffer): number {
  const r = testRun(p.fromFabric, { data: frame });
  assert.deepEqual(r.data, frame, 'the program never changes a packet');
  return r.retval;
}

const tcp = (src: string, dst: string): Buffer => ipv4Frame({ src, dst }, { proto: 'tcp', sport: 40000, dport: 80, flags: 0x02 });

/** [what, program, frame, verdict, counter it moves (NONE: forwarded)] */
const ROWS: readonly (readonly [string, () => HostProgram, Buffer, number, number])[] = [
  ['TCP from another node\'s pod to a local pod', () => host, tcp(REMOTE_POD, LOCAL_POD), TC_ACT_OK, SluiceDropReason.NONE],
  ['UDP from another node\'s pod to a local pod', () => host, ipv4Frame({ src: REMOTE_POD, dst: LOCAL_POD }, { proto: 'udp', sport: 5000, dport: 53 }), TC_ACT_OK, SluiceDropReason.NONE],
  ['ICMP from another node\'s pod to a local pod', () => host, ipv4Frame({ src: REMOTE_POD, dst: LOCAL_POD }, { proto: 'icmp', type: 8, code: 0 }), TC_ACT_OK, SluiceDropReason.NONE],
  ['a local pod\'s address to another node\'s pod (not for a local pod)', () => host, tcp(LOCAL_POD, REMOTE_POD), TC_ACT_OK, SluiceDropReason.NONE],
  ['node to node', () => host, tcp('172.30.0.12', '172.30.0.11'), TC_ACT_OK, SluiceDropReason.NONE],
  ['VXLAN from another node', () => host, ipv4Frame({ src: '172.30.0.12', dst: '172.30.0.11' }, { proto: 'udp', sport: 40001, dport: 8472, payload: Buffer.alloc(64) }), TC_ACT_OK, SluiceDropReason.NONE],
  ['ARP', () => host, arpFrame({ senderIp: '172.30.0.12', targetIp: '172.30.0.11' }), TC_ACT_OK, SluiceDropReason.NONE],
  ['a local pod\'s address to a local pod: a spoof', () => host, tcp(OTHER_LOCAL_POD, LOCAL_POD), TC_ACT_SHOT, SluiceDropReason.NODE_SPOOFED_SOURCE],
  ['the same without a podCIDR: the check is off', () => hostOff, tcp(OTHER_LOCAL_POD, LOCAL_POD), TC_ACT_OK, SluiceDropReason.NONE],
  ['IPv6 (not enforced yet: fail closed, as on the pods\' veths)', () => host, ethernet(0x86dd, Buffer.alloc(40)), TC_ACT_SHOT, SluiceDropReason.UNSUPPORTED_L3],
];

test('verdicts, unchanged bytes and the one counter each frame moves', () => {
  for (const [what, prog, frame, verdict, reason] of ROWS) {
    const before = readCounter(lxc.maps.metrics, INGRESS, reason);
    assert.equal(run(prog(), frame), verdict, what);
    const after = readCounter(lxc.maps.metrics, INGRESS, reason);
    assert.deepEqual([after.packets - before.packets, after.bytes - before.bytes], [1n, BigInt(frame.length)], what);
  }
});

test('for a local pod, from a local pod\'s address: a spoof, dropped with NODE_SPOOFED_SOURCE and reported', async () => {
  const before = readCounter(lxc.maps.metrics, INGRESS, SluiceDropReason.NODE_SPOOFED_SOURCE);
  const frame = tcp(OTHER_LOCAL_POD, LOCAL_POD);
  assert.equal(run(host, frame), TC_ACT_SHOT);
  const after = readCounter(lxc.maps.metrics, INGRESS, SluiceDropReason.NODE_SPOOFED_SOURCE);
  assert.equal(after.packets - before.packets, 1n);
  assert.equal(after.bytes - before.bytes, BigInt(frame.length));
  const deadline = Date.now() + 2000;
  let drop: SluiceEvent | undefined;
  while (drop === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    drop = events.find((e) => e.eventType === SluiceEventType.DROP && e.dropReason === SluiceDropReason.NODE_SPOOFED_SOURCE);
  }
  assert.ok(drop, 'a drop event');
  assert.deepEqual(
    [drop.saddr, drop.daddr, drop.srcIdentity, drop.dstIdentity, drop.direction, drop.endpointId, drop.dport],
    [parseIpv4(OTHER_LOCAL_POD), parseIpv4(LOCAL_POD), ID_OTHER_LOCAL, ID_LOCAL, INGRESS, 0, 80],
  );
});
