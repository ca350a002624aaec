/**
 * The lab with the lxc programs on every host veth: real packets through the
 * real datapath. NetworkPolicy enforcement with conntrack (maps written by
 * hand here; the compiler writes them in the policy tests), drop events,
 * atomic reload under load, and pinned maps that outlive the process that
 * created them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openPinnedMap } from '../../src/datapath/bpf-map.js';
import { removePinDir } from '../../src/datapath/bpffs.js';
import {
  type SluiceEvent,
  SluiceDirection,
  SluiceDropReason,
  SluiceEventFlags,
  SluiceEventType,
  SluicePolicyAction,
  SluiceVerdict,
} from '../../src/datapath/generated/abi.js';
import { loadLxc, LXC_MAP_LAYOUTS } from '../../src/datapath/lxc.js';
import { dumpConntrack } from '../../src/datapath/maps/conntrack.js';
import { dumpEndpoints, endpointEntry } from '../../src/datapath/maps/endpoints.js';
import { dumpIpcache } from '../../src/datapath/maps/ipcache.js';
import { readCounter } from '../../src/datapath/maps/metrics.js';
import { readEvents } from '../../src/datapath/maps/events.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { ALL_POLICY_CLASSES, dumpPolicyV3, policyKey, policyKeysForPorts } from '../../src/datapath/maps/policy-v3.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { type Runner, execRunner } from '../../src/lab/command.js';
import type { EndpointDatapath } from '../../src/lab/endpoint-datapath.js';
import { LabError } from '../../src/lab/errors.js';
import { Lab } from '../../src/lab/lab.js';
import { LxcEndpoints } from '../../src/lab/lxc-endpoints.js';
import { pinRootFor } from '../../src/lab/names.js';
import type { LabPlan, PodPlan } from '../../src/lab/spec.js';
import {
  inNetns, labLeftovers, labPaths, ping, sh, tcpProbe, tcpServe, tcpStream, udpAsk, udpServe, uniqueLabName,
} from './helpers.js';

const endpoints = new LxcEndpoints();
const lab = new Lab({ runner: execRunner, paths: labPaths, datapath: endpoints });
const name = uniqueLabName();
/** Other labs and pin roots this file creates; all checked in after(). */
const extraLabs: string[] = [];
let plan: LabPlan;
let a: PodPlan;
let b: PodPlan;
let c: PodPlan;
let maps: PinnedDatapathMaps;

before(async () => {
  const state = await lab.up({ name, pods: ['a', 'b', 'c'] });
  plan = state.plan;
  const [pa, pb, pc] = plan.pods;
  assert.ok(pa && pb && pc);
  [a, b, c] = [pa, pb, pc];
  maps = openPinnedDatapathMaps(plan.pinRoot);
});

after(async () => {
  maps.close();
  await lab.down(name);
  for (const n of extraLabs) await lab.down(n);
  for (const n of [name, ...extraLabs]) assert.deepEqual(await labLeftovers(n), [], `lab ${n} left objects behind`);
});

test('programs on both host veths, pod identities in the ipcache, endpoints known and not isolated', async () => {
  const status = await lab.status(name);
  assert.equal(status.healthy, true);
  for (const p of status.pods) {
    assert.ok(p.programs?.fromContainer, `${p.pod.name}: from_container attached`);
    assert.ok(p.programs?.toContainer, `${p.pod.name}: to_container attached`);
  }
  assert.deepEqual(dumpEndpoints(maps.endpoints), [a, b, c].map((p) => ({
    endpointId: p.endpointId, ingressIsolated: false, egressIsolated: false, policyRevision: 0, ingressClasses: '', egressClasses: '',
    policyIncomplete: false, otherFlags: 0,
  })));
  const ipcache = dumpIpcache(maps.ipcache);
  assert.deepEqual(ipcache, [
    { prefix: `${a.ipv4}/32`, identity: a.identity, flags: 0 },
    { prefix: `${b.ipv4}/32`, identity: b.identity, flags: 0 },
    { prefix: `${c.ipv4}/32`, identity: c.identity, flags: 0 },
  ]);
});

test('pods talk through the programs: ping and TCP both ways, counted as forwarded', async (t) => {
  const { metrics } = maps;
  const fwdBefore = readCounter(metrics, SluiceDirection.INGRESS, SluiceDropReason.NONE).packets;
  const ab = await ping(a.netns, b.ipv4, 5);
  assert.equal(ab.received, 5, 'a -> b');
  assert.equal((await ping(b.netns, a.ipv4, 5)).received, 5, 'b -> a');
  t.diagnostic(`ping a->b through the datapath: avg RTT ${ab.avgMs} ms`);
  // 10 echo requests + 10 replies entered a pod; each passed a to_container.
  const fwd = readCounter(metrics, SluiceDirection.INGRESS, SluiceDropReason.NONE).packets - fwdBefore;
  assert.ok(fwd >= 20n, `to_container counted ${fwd} forwarded packets, want >= 20`);

  for (const [client, server, port] of [
    [b, a, 7001],
    [a, b, 7002],
  ] as const) {
    const srv = await tcpServe(server.netns, server.ipv4, port);
    const res = await tcpStream(client.netns, server.ipv4, port, 500);
    assert.equal(res.error, undefined, `${client.name} -> ${server.name}: ${res.error}`);
    assert.equal(res.server?.bytes, res.written);
    assert.equal(res.server?.ok, true);
    srv.kill();
    t.diagnostic(`TCP ${client.name}->${server.name}: ${((res.written * 8) / 0.5 / 1e9).toFixed(1)} Gbit/s`);
  }
});

/** a isolated both ways; b may reach a on TCP `tcpPort` and UDP `udpPort` (rules 4242, 4243). */
function isolateA(tcpPort: number, udpPort: number, revision: number): void {
  const base = { endpointId: a.endpointId, remoteIdentity: b.identity, direction: SluiceDirection.INGRESS };
  maps.policy.updateBatch([
    ...policyKeysForPorts(base, 6, tcpPort, tcpPort).map((k) => [k, { action: SluicePolicyAction.ALLOW, ruleId: 4242 }] as const),
    ...policyKeysForPorts(base, 17, udpPort, udpPort).map((k) => [k, { action: SluicePolicyAction.ALLOW, ruleId: 4243 }] as const),
  ]);
  maps.endpoints.update(a.endpointId, endpointEntry({ ingress: true, egress: true }, revision));
}

/** Undoes isolateA: no policy entries, a not isolated (a new revision, so a's connections are re-checked). */
function openA(revision: number): void {
  maps.policy.deleteBatch([...maps.policy.entries()].map(([k]) => k));
  maps.endpoints.update(a.endpointId, endpointEntry({ ingress: false, egress: false }, revision));
}

test('NetworkPolicy on real traffic: the allowed port only, replies pass, reverse connections and other ports are dropped with events', async () => {
  const events: SluiceEvent[] = [];
  const reader = readEvents(maps.events, (batch) => events.push(...batch));
  const servers: { kill(): void }[] = [];
  try {
    isolateA(7100, 7101, 1);
    // TCP b -> a:7100 is allowed; the stream's bytes and the server's summary (a -> b, egress isolated
    // without any rule) both pass: the summary is a reply of the allowed connection.
    const srv = await tcpServe(a.netns, a.ipv4, 7100);
    const res = await tcpStream(b.netns, a.ipv4, 7100, 300);
    assert.equal(res.error, undefined, `b -> a:7100: ${res.error}`);
    assert.equal(res.server?.ok, true);
    assert.equal(res.server?.bytes, res.written);
    assert.ok(res.written > 0);
    srv.kill();
    const flow = dumpConntrack(maps.conntrack).find((e) => e.endpointId === a.endpointId && e.local === `${a.ipv4}:7100`);
    assert.deepEqual(flow && [flow.origDirection, flow.ruleId, flow.policyRevision], ['INGRESS', 4242, 1]);

    // Another port of a: dropped at a's ingress.
    servers.push(await tcpServe(a.netns, a.ipv4, 7102));
    assert.equal(await tcpProbe(b.netns, a.ipv4, 7102, 41002, 1000), 'timeout', 'b -> a:7102');
    // A new connection in the reverse direction (a -> b): dropped at a's egress.
    servers.push(await tcpServe(b.netns, b.ipv4, 7103));
    assert.equal(await tcpProbe(a.netns, b.ipv4, 7103, 41003, 1000), 'timeout', 'a -> b:7103');

    // UDP likewise: the echo of an allowed datagram comes back, another port and the reverse direction do not.
    servers.push(await udpServe(a.netns, a.ipv4, 7101), await udpServe(a.netns, a.ipv4, 7104), await udpServe(b.netns, b.ipv4, 7105));
    assert.equal(await udpAsk(b.netns, a.ipv4, 7101, 42001), 'answered', 'b -> a:7101/udp and its echo');
    assert.equal(await udpAsk(b.netns, a.ipv4, 7104, 42004), 'timeout', 'b -> a:7104/udp');
    assert.equal(await udpAsk(a.netns, b.ipv4, 7105, 42005), 'timeout', 'a -> b:7105/udp');
    // ICMP: no rule without ports, so no ping.
    assert.equal((await ping(b.netns, a.ipv4, 1)).received, 0, 'b -> a ping');

    const drop = (saddr: string, daddr: string, protocol: number, dport: number, direction: number): SluiceEvent =>
      waitForSync(events, (e) => e.eventType === SluiceEventType.DROP && e.saddr === parseIpv4(saddr) &&
        e.daddr === parseIpv4(daddr) && e.protocol === protocol && e.dport === dport && e.direction === direction);
    const common = {
      verdict: SluiceVerdict.DROPPED, dropReason: SluiceDropReason.POLICY_DENIED, endpointId: a.endpointId, ruleId: 0,
      flags: SluiceEventFlags.CT_NEW,
    };
    await settle(events, 6);
    const cases = [
      drop(b.ipv4, a.ipv4, 6, 7102, SluiceDirection.INGRESS),
      drop(a.ipv4, b.ipv4, 6, 7103, SluiceDirection.EGRESS),
      drop(b.ipv4, a.ipv4, 17, 7104, SluiceDirection.INGRESS),
      drop(a.ipv4, b.ipv4, 17, 7105, SluiceDirection.EGRESS),
      drop(b.ipv4, a.ipv4, 1, 0, SluiceDirection.INGRESS),
    ];
    for (const ev of cases) {
      assert.deepEqual(pick(ev, common), common);
      const [src, dst] = ev.direction === SluiceDirection.INGRESS ? [b, a] : [a, b];
      assert.deepEqual([ev.srcIdentity, ev.dstIdentity], [src.identity, dst.identity]);
    }
    assert.deepEqual([cases[0]?.sport, cases[1]?.sport], [41002, 41003]);
    // Nothing of the allowed traffic was dropped.
    assert.equal(events.filter((e) => e.eventType === SluiceEventType.DROP && (e.dport === 7100 || e.dport === 7101 ||
      e.sport === 7100 || e.sport === 7101)).length, 0);

    // Opening a again (a new revision) lets everything through.
    openA(2);
    assert.equal(await tcpProbe(a.netns, b.ipv4, 7103, 41013, 1000), 'connected', 'a -> b:7103 once open');
    assert.equal(await udpAsk(b.netns, a.ipv4, 7104, 42014), 'answered', 'b -> a:7104/udp once open');
    assert.equal((await ping(b.netns, a.ipv4, 1)).received, 1, 'b -> a ping once open');
  } finally {
    reader.stop();
    for (const s of servers) s.kill();
    openA(3);
  }
});

test('a policy change reaches established flows through the policy revision', async () => {
  const srv = await udpServe(a.netns, a.ipv4, 7301);
  try {
    isolateA(7300, 7301, 10);
    // One UDP flow, always from b's port 43001: one conntrack entry at a.
    assert.equal(await udpAsk(b.netns, a.ipv4, 7301, 43001), 'answered', 'allowed');
    // The rule goes but the revision stays: the established flow does not consult policy.
    maps.policy.deleteBatch([...maps.policy.entries()].map(([k]) => k));
    assert.equal(await udpAsk(b.netns, a.ipv4, 7301, 43001), 'answered', 'established, no policy lookup');
    assert.equal(await udpAsk(b.netns, a.ipv4, 7301, 43002), 'timeout', 'a new flow meets the missing rule');
    // As the compiler does with every change: the revision moves, and the flow is judged again, and cut.
    maps.endpoints.update(a.endpointId, endpointEntry({ ingress: true, egress: true }, 11));
    assert.equal(await udpAsk(b.netns, a.ipv4, 7301, 43001), 'timeout', 're-checked and revoked');
    assert.deepEqual(dumpConntrack(maps.conntrack).filter((e) => e.endpointId === a.endpointId && e.local === `${a.ipv4}:7301`),
      [], 'the entry is gone');
  } finally {
    srv.kill();
    openA(12);
  }
});

test('reload under a streaming TCP connection: new programs swapped in, no reset, no lost byte, no gap, maps kept', async (t) => {
  const { policy, ipcache, metrics, endpoints } = maps;
  const mapIds = pinnedMapIds();
  // a is isolated for ingress and accepts only b on TCP 7200 (and no egress rule is needed: replies).
  // Enforcement must have no gap: c pings a every 2 ms throughout, and every probe must be dropped. A moment
  // without a program on a's veth would let one through; so would a reload that lost the endpoint entry,
  // the policy map or the stream's conntrack entry, and the stream would stall.
  const allowB = policyKeysForPorts({ endpointId: a.endpointId, remoteIdentity: b.identity, direction: SluiceDirection.INGRESS },
    6, 7200, 7200);
  policy.updateBatch(allowB.map((k) => [k, { action: SluicePolicyAction.ALLOW, ruleId: 77 }] as const));
  endpoints.update(a.endpointId, endpointEntry({ ingress: true, egress: true }, 20));
  const deniedBefore = readCounter(metrics, SluiceDirection.INGRESS, SluiceDropReason.POLICY_DENIED).packets;
  const ipcacheBefore = dumpIpcache(ipcache);
  const policyBefore = dumpPolicyV3(policy);
  const endpointsBefore = dumpEndpoints(endpoints);
  const before = await lab.status(name);

  const srv = await tcpServe(a.netns, a.ipv4, 7200);
  const streaming = tcpStream(b.netns, a.ipv4, 7200, 4000);
  const probing = inNetns(c.netns, ['ping', '-n', '-q', '-i', '0.002', '-w', '4', a.ipv4], 10_000);
  const reloads: string[] = [];
  // Reload both ends of the path, several times, while the bytes flow.
  for (let i = 0; i < 3; i++) {
    await delay(700);
    for (const pod of ['a', 'b']) {
      const p = await lab.reload(name, pod);
      reloads.push(`${pod}: from=${p.fromContainer} to=${p.toContainer}`);
    }
  }
  const res = await streaming;
  const served = await srv.done;
  const probe = /(\d+) packets transmitted, (\d+) received/.exec((await probing).stdout);
  const denied = readCounter(metrics, SluiceDirection.INGRESS, SluiceDropReason.POLICY_DENIED).packets - deniedBefore;
  t.diagnostic(`reloads: ${reloads.join('; ')}`);
  t.diagnostic(`stream: ${res.written} bytes, server got ${served.bytes}, longest pause ${served.maxGapMs} ms`);
  t.diagnostic(`denied c -> a probes: ${probe?.[1]} sent, ${probe?.[2]} answered, ${denied} dropped by policy`);

  assert.ok(probe, 'ping summary from c');
  assert.ok(Number(probe[1]) > 100, `only ${probe[1]} probes sent`);
  assert.equal(Number(probe[2]), 0, 'a denied probe got through during a reload');
  assert.equal(denied, BigInt(probe[1] ?? -1), 'every probe was dropped by a program');

  assert.equal(res.error, undefined, `client: ${res.error}`);
  assert.equal(served.error, undefined, `server: ${served.error}`);
  assert.equal(served.ok, true, `byte pattern broken at ${served.firstBad}`);
  assert.equal(served.bytes, res.written);
  assert.ok(res.written > 100_000_000, `only ${res.written} bytes in 4 s`);
  assert.ok(served.maxGapMs < 1000, `the stream paused ${served.maxGapMs} ms`);

  // New programs in the same slots, all of them using the same pinned maps.
  const afterStatus = await lab.status(name);
  for (const [i, p] of afterStatus.pods.entries()) {
    if (p.pod.name === 'c') continue; // not reloaded
    const old = before.pods[i]?.programs;
    assert.ok(p.programs?.fromContainer && p.programs.toContainer);
    assert.notEqual(p.programs.fromContainer, old?.fromContainer, `${p.pod.name}: from_container replaced`);
    assert.notEqual(p.programs.toContainer, old?.toContainer, `${p.pod.name}: to_container replaced`);
    // Each program references the maps its code uses (to_container none of the load balancer's tables); the
    // pair uses every pinned map.
    const used = [...await progMapIds(p.programs.fromContainer), ...await progMapIds(p.programs.toContainer)];
    for (const [name, mapId] of Object.entries(mapIds)) assert.ok(used.includes(mapId), `${p.pod.name}: the programs use ${name} (${mapId})`);
  }
  // Replaced in place: still exactly one filter per hook.
  for (const pod of [a, b]) {
    for (const dir of ['ingress', 'egress']) {
      const shown = await sh('tc', ['-n', plan.nodeNetns, 'filter', 'show', 'dev', pod.hostIfname, dir]);
      assert.equal(shown.stdout.match(/ bpf .* handle /g)?.length, 1, `${pod.hostIfname} ${dir}: ${shown.stdout}`);
    }
  }
  assert.deepEqual(pinnedMapIds(), mapIds, 'pinned maps reused, not recreated');
  assert.deepEqual(dumpPolicyV3(policy), policyBefore);
  assert.deepEqual(dumpEndpoints(endpoints), endpointsBefore, 'a reload keeps the endpoint entries (and a\'s isolation)');
  assert.deepEqual(dumpIpcache(ipcache), ipcacheBefore);
  openA(21);
});

test('pinned maps survive the process that created them', async () => {
  const pinRoot = pinRootFor(labPaths, uniqueLabName());
  try {
    assert.equal(existsSync(pinRoot), false);
    const child = fileURLToPath(new URL('./pin-child.js', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [child, pinRoot]);
    assert.match(stdout, /written/);
    // The child has exited; only the pins hold the maps now.
    const lxc = loadLxc({ pinRoot });
    try {
      const key = policyKey({ endpointId: 77, remoteIdentity: 7777, direction: SluiceDirection.EGRESS });
      assert.deepEqual(lxc.maps.policy.lookup(key), { action: SluicePolicyAction.ALLOW, ruleId: 7 });
      assert.deepEqual(dumpPolicyV3(lxc.maps.policy), [
        { endpointId: 77, direction: 'EGRESS', remoteIdentity: 7777, protocol: '*', ports: '*', action: 'ALLOW', ruleId: 7 },
      ]);
      assert.deepEqual(lxc.maps.endpoints.lookup(77),
        { flags: 2, policyRevision: 1, ingressPolicyClasses: ALL_POLICY_CLASSES, egressPolicyClasses: ALL_POLICY_CLASSES });
    } finally {
      lxc.close();
    }
  } finally {
    removePinDir(pinRoot);
  }
});

test('a failure half-way with the datapath loaded rolls back netns, programs and pins', async () => {
  const n = uniqueLabName();
  extraLabs.push(n);
  const pinsSeen: boolean[] = [];
  const recording: EndpointDatapath = {
    attach: async (p, pod, opts) => {
      const r = await endpoints.attach(p, pod, opts);
      pinsSeen.push(existsSync(`${p.pinRoot}/sl_policy_v3`) && existsSync(`${p.pinRoot}/sl_endpoints_v2`));
      return r;
    },
    query: (p, pod) => endpoints.query(p, pod),
  };
  // The real `ip` rejects pod c's address, after a and b were attached.
  const faulty: Runner = (file, args) => execRunner(file, args.map((x) => (/^10\.\d+\.0\.4\/32$/.test(x) ? '10.0.0.300/32' : x)));
  const failing = new Lab({ runner: faulty, paths: labPaths, datapath: recording });
  await assert.rejects(failing.up({ name: n, pods: ['a', 'b', 'c'] }), (e: unknown) => {
    assert.ok(e instanceof LabError);
    assert.equal(e.code, 'setup-failed');
    assert.match(e.message, /creating pod "c" failed: .*10\.0\.0\.300.*; rolled back/);
    return true;
  });
  assert.deepEqual(pinsSeen, [true, true], 'pods a and b were attached with pinned maps before the failure');
  assert.deepEqual(await labLeftovers(n), []);
});

/** Map ids of the lab's pinned maps, by name. */
function pinnedMapIds(): Record<string, number> {
  const ids: Record<string, number> = {};
  for (const { name: m } of LXC_MAP_LAYOUTS) {
    const map = openPinnedMap(`${plan.pinRoot}/${m}`);
    ids[m] = map.info.id;
    map.close();
  }
  return ids;
}

/** The map ids a loaded program references (bpftool). */
async function progMapIds(progId: number): Promise<number[]> {
  const r = await sh('bpftool', ['-j', 'prog', 'show', 'id', String(progId)]);
  assert.equal(r.code, 0, r.stderr);
  return ((JSON.parse(r.stdout) as { map_ids?: number[] }).map_ids ?? []).slice();
}

/** Waits until at least `count` events arrived (or 2 s passed). */
async function settle(events: SluiceEvent[], count: number, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (events.length < count && Date.now() < deadline) await delay(20);
}

/** The first event matching, from those already read. */
function waitForSync(events: SluiceEvent[], match: (e: SluiceEvent) => boolean): SluiceEvent {
  const found = events.find(match);
  if (!found) throw new Error(`no matching event; got ${JSON.stringify(events, bigints)}`);
  return found;
}

function pick<T extends object>(v: SluiceEvent, like: T): T {
  return Object.fromEntries(Object.keys(like).map((k) => [k, v[k as keyof SluiceEvent]])) as T;
}

function bigints(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
