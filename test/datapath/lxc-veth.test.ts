/**
 * lxc.o on a real veth pair between two network namespaces, for what
 * BPF_PROG_TEST_RUN cannot show: the kernel's test-run refuses IPv4 frames
 * shorter than an IPv4 header, yet a pod with a packet socket can send them,
 * and tc sees them before any IP code does. Frames are written raw from the
 * pod (AF_PACKET, python3) so that they reach tc exactly as crafted.
 *
 *   netns <id>-pod: eth0 ══ veth ══ netns <id>-host: lxc<id>
 *                                   tc ingress = from_container
 *                                   tc egress  = to_container
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SluiceDirection, SluiceDropReason, SluiceEventFlags } from '../../src/datapath/generated/abi.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { attachTc, ensureClsact } from '../../src/datapath/tc.js';
import { eventFields, expectedEvent, LxcHarness, oneCounter, type EventFields } from '../helpers/lxc-harness.js';
import { ETH_HLEN, ETH_P_IP, ethernet, IPPROTO, ipv4Frame } from '../helpers/packet.js';

const id = randomBytes(3).toString('hex');
const POD_NS = `sluice-lxct-${id}-pod`;
const HOST_NS = `sluice-lxct-${id}-host`;
const HOST_IF = `lxc${id}`;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const EP = 21;
const { EGRESS, INGRESS } = SluiceDirection;

let h: LxcHarness | undefined;
let hostIfindex = 0;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

before(() => {
  try {
    for (const ns of [POD_NS, HOST_NS]) {
      ip('netns', 'add', ns);
      // No IPv6 autoconfiguration (router solicitations, DAD): the only
      // frames on this link are the ones the tests write.
      ip('netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1');
    }
    ip('-n', HOST_NS, 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', POD_NS);
    ip('-n', HOST_NS, 'link', 'set', HOST_IF, 'up');
    ip('-n', POD_NS, 'link', 'set', 'eth0', 'up');
    h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
    const where = { ifname: HOST_IF, netns: `/var/run/netns/${HOST_NS}` };
    // The veth's sl_lxc_v1 entry before the programs, as the CNI writes it.
    hostIfindex = ensureClsact(where).ifindex;
    h.dp.maps.interfaces.update(hostIfindex, h.endpoint);
    attachTc(where, 'ingress', h.dp.fromContainer.fd);
    attachTc(where, 'egress', h.dp.toContainer.fd);
  } catch (err) {
    cleanup();
    throw err;
  }
});
after(cleanup);

function cleanup(): void {
  // Deleting the namespaces deletes the veth pair and its tc filters.
  for (const ns of [POD_NS, HOST_NS]) spawnSync('ip', ['netns', 'del', ns]);
  h?.close();
  h = undefined;
}

function harness(): LxcHarness {
  assert.ok(h, 'harness not set up');
  return h;
}

/**
 * Writes frames, in order, on ifname in ns through one packet socket.
 * Returns per frame 'sent', or 'ENOBUFS' when a tc egress program on ifname
 * dropped it (the kernel reports TC_ACT_SHOT on transmit as NET_XMIT_DROP).
 */
function sendRaw(ns: string, ifname: string, frames: readonly Buffer[]): string[] {
  const script = [
    'import errno, socket, sys',
    's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)',
    's.bind((sys.argv[1], 0))',
    'for h in sys.argv[2:]:',
    '  try:',
    '    s.send(bytes.fromhex(h)); print("sent")',
    '  except OSError as e:',
    '    if e.errno != errno.ENOBUFS: raise',
    '    print("ENOBUFS")',
  ].join('\n');
  const out = execFileSync('ip', ['netns', 'exec', ns, 'python3', '-c', script, ifname,
    ...frames.map((f) => f.toString('hex'))], { stdio: ['ignore', 'pipe', 'pipe'] });
  return out.toString().trim().split('\n');
}

function setup(): void {
  const dp = harness().dp;
  harness().reset();
  setTraceAllowed(dp.maps.config, true);
  dp.maps.ipcache.updateBatch([
    [ipcacheKey(POD), { identity: 1000, flags: 0 }],
    [ipcacheKey(PEER), { identity: 1001, flags: 0 }],
  ]);
}

function event(direction: number, frame: Buffer, fields: Partial<EventFields>): EventFields {
  return expectedEvent({ direction, endpointId: EP, ifindex: hostIfindex, frame }, fields);
}

const udpOut = ipv4Frame({ src: POD, dst: PEER }, { proto: 'udp', sport: 5353, dport: 53 });
const udpIn = ipv4Frame({ src: PEER, dst: POD }, { proto: 'udp', sport: 53, dport: 5353 });

test('a well-formed frame from the pod is forwarded, traced with the veth\'s ifindex', async () => {
  setup();
  const seen = await harness().observe(EGRESS, (s) => void sendRaw(POD_NS, 'eth0', [udpOut, s]), [udpOut]);
  assert.deepEqual(eventFields(seen.events), [event(EGRESS, udpOut, {
    saddr: parseIpv4(POD), daddr: parseIpv4(PEER), sport: 5353, dport: 53, protocol: IPPROTO.UDP,
    srcIdentity: 1000, dstIdentity: 1001, flags: SluiceEventFlags.CT_NEW,
  })]);
  assert.deepEqual(seen.metrics, oneCounter(EGRESS, SluiceDropReason.NONE, udpOut.length));
});

test('an IPv4 header cut short (19 bytes) is INVALID_IP', async () => {
  setup();
  const frame = udpOut.subarray(0, ETH_HLEN + 19);
  const seen = await harness().observe(EGRESS, (s) => void sendRaw(POD_NS, 'eth0', [frame, s]), [frame]);
  assert.deepEqual(eventFields(seen.events), [event(EGRESS, frame, { dropReason: SluiceDropReason.INVALID_IP })]);
  assert.deepEqual(seen.metrics, oneCounter(EGRESS, SluiceDropReason.INVALID_IP, frame.length));
});

test('an IPv4 ethertype with no IP header at all is INVALID_IP', async () => {
  setup();
  const frame = ethernet(ETH_P_IP, Buffer.alloc(0));
  const seen = await harness().observe(EGRESS, (s) => void sendRaw(POD_NS, 'eth0', [frame, s]), [frame]);
  assert.deepEqual(eventFields(seen.events), [event(EGRESS, frame, { dropReason: SluiceDropReason.INVALID_IP })]);
});

test('a pod cannot send a frame shorter than Ethernet (so INVALID_L2 is a guard, not a path)', () => {
  assert.throws(() => sendRaw(POD_NS, 'eth0', [udpOut.subarray(0, ETH_HLEN - 1)]), /Invalid argument/);
});

test('traffic into the pod goes through to_container on the veth\'s egress', async () => {
  setup();
  const short = udpIn.subarray(0, ETH_HLEN + 10);
  let results: string[] = [];
  const seen = await harness().observe(INGRESS, (s) => {
    results = sendRaw(HOST_NS, HOST_IF, [udpIn, short, s]);
  }, [udpIn, short]);
  assert.deepEqual(results, ['sent', 'ENOBUFS', 'ENOBUFS']); // TC_ACT_OK, TC_ACT_SHOT, sentinel dropped
  assert.deepEqual(eventFields(seen.events), [
    event(INGRESS, udpIn, {
      saddr: parseIpv4(PEER), daddr: parseIpv4(POD), sport: 53, dport: 5353, protocol: IPPROTO.UDP,
      srcIdentity: 1001, dstIdentity: 1000, flags: SluiceEventFlags.CT_NEW,
    }),
    event(INGRESS, short, { dropReason: SluiceDropReason.INVALID_IP }),
  ]);
  assert.deepEqual(seen.metrics, [
    { direction: INGRESS, reason: SluiceDropReason.NONE, packets: 1n, bytes: BigInt(udpIn.length) },
    { direction: INGRESS, reason: SluiceDropReason.INVALID_IP, packets: 1n, bytes: BigInt(short.length) },
  ]);
});
