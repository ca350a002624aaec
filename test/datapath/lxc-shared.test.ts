/**
 * The lxc programs under BPF_PROG_TEST_RUN: they learn their endpoint from
 * sl_lxc_v1 by skb->ifindex, which a test run sets to the loopback device
 * (ifindex 1) unless the ctx names another device, and fail closed without
 * an entry. Table: entry state → verdict and the one counter that moved.
 * runAs (src/datapath/lxc-test-run.ts), which every other test run of the
 * programs goes through, rests on exactly this.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceDirection, SluiceDropReason, type EndpointConfig } from '../../src/datapath/generated/abi.js';
import { loadLxc, type LxcDatapath } from '../../src/datapath/lxc.js';
import { runAs, testRunIfindex } from '../../src/datapath/lxc-test-run.js';
import { endpointEntry } from '../../src/datapath/maps/endpoints.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { readCounter } from '../../src/datapath/maps/metrics.js';
import { testRun } from '../../src/datapath/test-run.js';
import { ipv4Frame } from '../helpers/packet.js';
import { withTestPinRoot } from '../helpers/pins.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
/** skb->dev of a test run without ctx: the loopback device. */
const TEST_RUN_IFINDEX = 1;
const POD = '10.0.1.5';
const PEER = '10.0.2.9';
const EP = 7;
const { EGRESS, INGRESS } = SluiceDirection;

interface Row {
  readonly name: string;
  /** The sl_lxc_v1 entry for the test run's ifindex (undefined: none). */
  readonly entry: EndpointConfig | undefined;
  /** Endpoint ids with an sl_endpoints_v2 entry. */
  readonly endpoints: readonly number[];
  readonly prog: 'from_container' | 'to_container';
  readonly src: string;
  readonly dst: string;
  readonly retval: number;
  readonly reason: number;
}

const entry = (endpointId: number, ipv4: string): EndpointConfig => ({ endpointId, ipv4: ipv4 === '' ? 0 : parseIpv4(ipv4) });
const { NONE, INTERFACE_UNKNOWN, ENDPOINT_UNKNOWN, SPOOFED_SOURCE } = SluiceDropReason;

const ROWS: readonly Row[] = [
  { name: 'no entry: from the pod, dropped', entry: undefined, endpoints: [EP], prog: 'from_container', src: POD, dst: PEER, retval: TC_ACT_SHOT, reason: INTERFACE_UNKNOWN },
  { name: 'no entry: to the pod, dropped', entry: undefined, endpoints: [EP], prog: 'to_container', src: PEER, dst: POD, retval: TC_ACT_SHOT, reason: INTERFACE_UNKNOWN },
  { name: 'an entry for endpoint 0 is no entry', entry: entry(0, POD), endpoints: [EP], prog: 'from_container', src: POD, dst: PEER, retval: TC_ACT_SHOT, reason: INTERFACE_UNKNOWN },
  { name: 'entry, endpoint unknown to the agent', entry: entry(EP, POD), endpoints: [], prog: 'from_container', src: POD, dst: PEER, retval: TC_ACT_SHOT, reason: ENDPOINT_UNKNOWN },
  { name: 'entry + endpoint: from the pod, forwarded', entry: entry(EP, POD), endpoints: [EP], prog: 'from_container', src: POD, dst: PEER, retval: TC_ACT_OK, reason: NONE },
  { name: 'entry + endpoint: to the pod, forwarded', entry: entry(EP, POD), endpoints: [EP], prog: 'to_container', src: PEER, dst: POD, retval: TC_ACT_OK, reason: NONE },
  { name: 'the entry\'s address is the source check', entry: entry(EP, POD), endpoints: [EP], prog: 'from_container', src: '10.0.1.6', dst: PEER, retval: TC_ACT_SHOT, reason: SPOOFED_SOURCE },
  { name: 'address 0 turns the source check off', entry: entry(EP, ''), endpoints: [EP], prog: 'from_container', src: '10.0.1.6', dst: PEER, retval: TC_ACT_OK, reason: NONE },
];

function frame(src: string, dst: string): Buffer {
  return ipv4Frame({ src, dst }, { proto: 'udp', sport: 40000, dport: 53 });
}

function setUp(dp: LxcDatapath, row: Pick<Row, 'entry' | 'endpoints'>): void {
  const { interfaces, endpoints, conntrack } = dp.maps;
  interfaces.deleteBatch([...interfaces.entries()].map(([k]) => k));
  endpoints.deleteBatch([...endpoints.entries()].map(([k]) => k));
  conntrack.deleteBatch([...conntrack.entries()].map(([k]) => k));
  if (row.entry !== undefined) interfaces.update(TEST_RUN_IFINDEX, row.entry);
  for (const id of row.endpoints) endpoints.update(id, endpointEntry({ ingress: false, egress: false }, 0));
}

test('verdict and counter by the sl_lxc_v1 entry of the test run\'s ifindex (BPF_PROG_TEST_RUN)', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      for (const row of ROWS) {
        setUp(dp, row);
        const dir = row.prog === 'from_container' ? EGRESS : INGRESS;
        const before = readCounter(dp.maps.metrics, dir, row.reason).packets;
        const prog = row.prog === 'from_container' ? dp.fromContainer : dp.toContainer;
        const r = testRun(prog, { data: frame(row.src, row.dst) });
        assert.equal(r.retval, row.retval, row.name);
        assert.equal(readCounter(dp.maps.metrics, dir, row.reason).packets - before, 1n, `${row.name}: counter ${row.reason}`);
      }
    } finally {
      dp.close();
    }
  });
});

test('runAs: the entry it writes is the one the run reads; each run is the endpoint it names', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      setUp(dp, { entry: undefined, endpoints: [EP, EP + 1] });
      assert.equal(testRun(dp.fromContainer, { data: frame(POD, PEER) }).retval, TC_ACT_SHOT, 'no entry yet');
      assert.equal(runAs(dp.maps.interfaces, entry(EP, POD), dp.fromContainer, { data: frame(POD, PEER) }).retval, TC_ACT_OK);
      assert.deepEqual(dp.maps.interfaces.lookup(TEST_RUN_IFINDEX), entry(EP, POD));
      // Another endpoint of another address: POD is now a spoofed source, its own address passes.
      const other = entry(EP + 1, '10.0.1.6');
      assert.equal(runAs(dp.maps.interfaces, other, dp.fromContainer, { data: frame(POD, PEER) }).retval, TC_ACT_SHOT);
      assert.equal(runAs(dp.maps.interfaces, other, dp.fromContainer, { data: frame('10.0.1.6', PEER) }).retval, TC_ACT_OK);
      assert.equal(runAs(dp.maps.interfaces, entry(EP, POD), dp.fromContainer, { data: frame(POD, PEER) }).retval, TC_ACT_OK);
    } finally {
      dp.close();
    }
  });
});

test('testRunIfindex: the loopback device unless the ctx names one', () => {
  const ctx = Buffer.alloc(192); // sizeof(struct __sk_buff)
  assert.equal(testRunIfindex(undefined), TEST_RUN_IFINDEX);
  assert.equal(testRunIfindex(ctx), TEST_RUN_IFINDEX);
  ctx.writeUInt32LE(42, 40);
  assert.equal(testRunIfindex(ctx), 42);
});
