/**
 * What the load-balancer owner writes, as the datapath uses it: lxc.o's
 * from_container under BPF_PROG_TEST_RUN as a client pod, over maps the
 * owner wrote from Services and slices (pin dir /sys/fs/bpf/sluice-lba-*,
 * removed after). A SYN to the ClusterIP goes to the backend the owner's
 * Maglev table names for the flow's hash; a connection keeps its backend
 * when the owner changes the Service; a serving-only backend gets no new
 * connection; a Service without endpoints rejects, one whose Local policy
 * leaves none here drops; a deleted Service is not translated any more.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceDropReason, SluiceLbScope, SluiceLbSet } from '../../src/datapath/generated/abi.js';
import { formatIpv4, parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { lbFlowHash } from '../../src/datapath/maps/lb-tables.js';
import { removePinDir } from '../../src/datapath/bpffs.js';
import type { EndpointSlice, Service } from '../../src/lb/model.js';
import { LbOwner } from '../../src/reconcile/lb.js';
import { runRound } from '../../src/reconcile/round.js';
import { clearLb, decodeFrame } from '../helpers/lb.js';
import { createLbaPinRoot, lbEndpoint, lbService, lbSlice } from '../helpers/lb-fixtures.js';
import { LxcHarness, TC_ACT_OK, TC_ACT_SHOT } from '../helpers/lxc-harness.js';
import { IPPROTO, TCP_FLAGS, ipv4Frame } from '../helpers/packet.js';

const M = 251;
const POD = '10.0.1.5';
const VIP = '10.96.0.10';
const { SYN, ACK, RST } = TCP_FLAGS;
const eth = { src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' };
const syn = (sport: number, flags: number = SYN, dst = VIP): Buffer => ipv4Frame({ src: POD, dst }, { proto: 'tcp', sport, dport: 80, flags, seq: 1000 }, eth);

let h: LxcHarness;
let owner: LbOwner;
before(() => {
  h = LxcHarness.open({ endpointId: 1, ipv4: parseIpv4(POD) }, { create: createLbaPinRoot, remove: removePinDir });
});
after(() => h.close());
beforeEach(() => {
  h.reset();
  clearLb(h.dp.maps.lb);
  owner = new LbOwner(h.dp.maps.lb, { algorithm: 'maglev', maglevTableSize: M });
});

function program(services: Service[], slices: EndpointSlice[]): void {
  const r = runRound([owner], { lb: { services, slices, node: { name: 'n1' }, nodeAddresses: [] } });
  assert.equal(r.owners[0]?.complete, true, JSON.stringify(r.owners[0]?.failures));
}

/** The backend ("ip:port") the owner's table gives a flow from the pod's port `sport` to VIP:80. */
function tableChoice(sport: number): string {
  const entry = h.dp.maps.lb.services.lookup({ addr: parseIpv4(VIP), port: 80, protocol: IPPROTO.TCP, scope: SluiceLbScope.POD });
  assert.ok(entry);
  const table = h.dp.maps.lb.tables.read({ serviceId: entry.serviceId, backendSet: SluiceLbSet.CLUSTER });
  assert.equal(table?.length, M);
  const id = table[lbFlowHash({ clientAddr: parseIpv4(POD), clientPort: sport, frontendPort: 80, protocol: IPPROTO.TCP }) % M] ?? 0;
  const b = h.dp.maps.lb.backends.lookup(id);
  assert.ok(b, `backend ${id}`);
  return `${formatIpv4(b.addr)}:${b.port}`;
}

async function sentTo(frame: Buffer): Promise<string> {
  const r = await h.run('from_container', frame);
  assert.equal(r.retval, TC_ACT_OK);
  const d = decodeFrame(r.data);
  return `${d.dst}:${d.dport}`;
}

const web = lbService('web', VIP);
const three = lbSlice('web', [lbEndpoint('10.0.2.7'), lbEndpoint('10.0.2.8'), lbEndpoint('10.0.2.9')]);

test('a SYN to the ClusterIP goes to the backend the owner\'s Maglev table names for its flow', async () => {
  program([web], [three]);
  const seen = new Set<string>();
  for (let sport = 40000; sport < 40030; sport++) {
    const to = await sentTo(syn(sport));
    assert.equal(to, tableChoice(sport), `port ${sport}`);
    seen.add(to);
  }
  assert.deepEqual([...seen].sort(), ['10.0.2.7:8080', '10.0.2.8:8080', '10.0.2.9:8080']);
});

test('the owner changes the Service: an open connection keeps its backend, new ones follow the new table; serving-only gets none', async () => {
  program([web], [three]);
  const first = await sentTo(syn(41000));
  const [ip] = first.split(':');
  // Its endpoint starts terminating (still serving): it stays a backend, flagged not selectable.
  program([web], [lbSlice('web', [lbEndpoint('10.0.2.7'), lbEndpoint('10.0.2.8'), lbEndpoint('10.0.2.9')]
    .map((e) => (e.addresses[0] === ip ? { ...e, ready: false, terminating: true } : e)))]);
  assert.equal(await sentTo(syn(41000, ACK)), first, 'the connection keeps its backend');
  for (let sport = 41001; sport < 41031; sport++) {
    const to = await sentTo(syn(sport));
    assert.notEqual(to, first, `new connection from port ${sport}`);
    assert.equal(to, tableChoice(sport));
  }
});

test('no endpoint anywhere: the SYN is answered with a reset; Local policy with endpoints elsewhere: dropped', async () => {
  program([web], []);
  const r = await h.run('from_container', syn(42000));
  const d = decodeFrame(r.data);
  assert.deepEqual([d.src, d.sport, d.dst, d.dport, (d.tcpFlags & RST) !== 0], [VIP, 80, POD, 42000, true], 'a reset from the frontend');

  program([{ ...web, internalTrafficPolicy: 'Local' }], [lbSlice('web', [lbEndpoint('10.0.2.7', { nodeName: 'n2' })])]);
  const dropped = await h.run('from_container', syn(42001));
  assert.equal(dropped.retval, TC_ACT_SHOT);
  assert.equal(dropped.metrics[0]?.reason, SluiceDropReason.SERVICE_NO_BACKEND);
});

test('a Service the owner deleted is no longer translated', async () => {
  program([web], [three]);
  assert.notEqual(await sentTo(syn(43000)), `${VIP}:80`);
  program([], []);
  assert.equal(await sentTo(syn(43001)), `${VIP}:80`);
});
