/**
 * The lab with the lxc programs on every host veth: real packets through the
 * real datapath. Policy, drop events, atomic reload under load, and pinned
 * maps that outlive the process that created them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type PinnedMap, openPinnedMap } from '../../src/datapath/bpf-map.js';
import { removePinDir } from '../../src/datapath/bpffs.js';
import {
  type SluiceEvent,
  SluiceDirection,
  SluiceDropReason,
  SluiceEventType,
  SluicePolicyAction,
  SluiceVerdict,
} from '../../src/datapath/generated/abi.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import { dumpIpcache, openIpcache } from '../../src/datapath/maps/ipcache.js';
import { openMetrics, readCounter } from '../../src/datapath/maps/metrics.js';
import { readEvents } from '../../src/datapath/maps/events.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { dumpPolicy, openPolicy } from '../../src/datapath/maps/policy.js';
import { type Runner, execRunner } from '../../src/lab/command.js';
import type { EndpointDatapath } from '../../src/lab/endpoint-datapath.js';
import { LabError } from '../../src/lab/errors.js';
import { Lab } from '../../src/lab/lab.js';
import { LxcEndpoints } from '../../src/lab/lxc-endpoints.js';
import { pinRootFor } from '../../src/lab/names.js';
import type { LabPlan, PodPlan } from '../../src/lab/spec.js';
import { inNetns, labLeftovers, labPaths, ping, sh, tcpProbe, tcpServe, tcpStream, uniqueLabName } from './helpers.js';

const endpoints = new LxcEndpoints();
const lab = new Lab({ runner: execRunner, paths: labPaths, datapath: endpoints });
const name = uniqueLabName();
/** Other labs and pin roots this file creates; all checked in after(). */
const extraLabs: string[] = [];
let plan: LabPlan;
let a: PodPlan;
let b: PodPlan;
let c: PodPlan;
const open: PinnedMap[] = [];

function pinned(map: string): PinnedMap {
  const m = openPinnedMap(`${plan.pinRoot}/${map}`);
  open.push(m);
  return m;
}

before(async () => {
  const state = await lab.up({ name, pods: ['a', 'b', 'c'] });
  plan = state.plan;
  const [pa, pb, pc] = plan.pods;
  assert.ok(pa && pb && pc);
  [a, b, c] = [pa, pb, pc];
});

after(async () => {
  for (const m of open) m.close();
  await lab.down(name);
  for (const n of extraLabs) await lab.down(n);
  for (const n of [name, ...extraLabs]) assert.deepEqual(await labLeftovers(n), [], `lab ${n} left objects behind`);
});

test('programs on both host veths, pod identities in the ipcache', async () => {
  const status = await lab.status(name);
  assert.equal(status.healthy, true);
  for (const p of status.pods) {
    assert.ok(p.programs?.fromContainer, `${p.pod.name}: from_container attached`);
    assert.ok(p.programs?.toContainer, `${p.pod.name}: to_container attached`);
  }
  const ipcache = dumpIpcache(openIpcache(pinned('sl_iphost_v1'), pinned('sl_ipcache_v1')));
  assert.deepEqual(ipcache, [
    { prefix: `${a.ipv4}/32`, identity: a.identity, flags: 0 },
    { prefix: `${b.ipv4}/32`, identity: b.identity, flags: 0 },
    { prefix: `${c.ipv4}/32`, identity: c.identity, flags: 0 },
  ]);
});

test('pods talk through the programs: ping and TCP both ways, counted as forwarded', async (t) => {
  const metrics = openMetrics(pinned('sl_metrics_v1'));
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

test('DENY b -> a stops traffic; the drop is an event with 5-tuple, identities, POLICY_DENIED; delete restores', async () => {
  const policy = openPolicy(pinned('sl_policy_v1'));
  const events: SluiceEvent[] = [];
  const reader = readEvents(pinned('sl_events_v1'), (batch) => events.push(...batch));
  const key = { endpointId: a.endpointId, remoteIdentity: b.identity, direction: SluiceDirection.INGRESS };
  try {
    policy.update(key, { action: SluicePolicyAction.DENY, ruleId: 4242 });
    assert.equal((await ping(b.netns, a.ipv4, 2)).received, 0, 'b -> a ping while denied');
    assert.equal(await tcpProbe(b.netns, a.ipv4, 7100, 41000, 1000), 'timeout', 'b -> a TCP while denied');

    const icmp = await waitFor(events, (e) => e.protocol === 1);
    const tcp = await waitFor(events, (e) => e.protocol === 6);
    const common = {
      eventType: SluiceEventType.DROP,
      verdict: SluiceVerdict.DROPPED,
      direction: SluiceDirection.INGRESS,
      dropReason: SluiceDropReason.POLICY_DENIED,
      saddr: parseIpv4(b.ipv4),
      daddr: parseIpv4(a.ipv4),
      srcIdentity: b.identity,
      dstIdentity: a.identity,
      endpointId: a.endpointId,
      ruleId: 4242,
    };
    // ICMP: "ports" carry type 8 (echo request) and code 0.
    assert.deepEqual(pick(icmp, common), { ...common });
    assert.deepEqual([icmp.sport, icmp.dport], [8, 0]);
    assert.deepEqual(pick(tcp, common), { ...common });
    assert.deepEqual([tcp.sport, tcp.dport], [41000, 7100]);

    assert.equal(policy.delete(key), true);
    assert.equal((await ping(b.netns, a.ipv4, 2)).received, 2, 'b -> a ping after delete');
    const srv = await tcpServe(a.netns, a.ipv4, 7100);
    assert.equal(await tcpProbe(b.netns, a.ipv4, 7100, 41001, 1000), 'connected', 'b -> a TCP after delete');
    srv.kill();
  } finally {
    reader.stop();
    policy.delete(key);
  }
});

test('reload under a streaming TCP connection: new programs swapped in, no reset, no lost byte, no gap, maps kept', async (t) => {
  const policy = openPolicy(pinned('sl_policy_v1'));
  const ipcache = openIpcache(pinned('sl_iphost_v1'), pinned('sl_ipcache_v1'));
  const metrics = openMetrics(pinned('sl_metrics_v1'));
  const mapIds = pinnedMapIds();
  // A sentinel entry the reload must not lose (an ALLOW: changes nothing).
  const sentinel = { endpointId: a.endpointId, remoteIdentity: 9999, direction: SluiceDirection.EGRESS };
  policy.update(sentinel, { action: SluicePolicyAction.ALLOW, ruleId: 77 });
  // Enforcement must have no gap: c -> a is denied, and c pings a every 2 ms
  // throughout. A moment without a program on a's veth would let one through.
  const denyC = { endpointId: a.endpointId, remoteIdentity: c.identity, direction: SluiceDirection.INGRESS };
  policy.update(denyC, { action: SluicePolicyAction.DENY, ruleId: 88 });
  const deniedBefore = readCounter(metrics, SluiceDirection.INGRESS, SluiceDropReason.POLICY_DENIED).packets;
  const ipcacheBefore = dumpIpcache(ipcache);
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
    for (const id of [p.programs.fromContainer, p.programs.toContainer]) {
      const used = await progMapIds(id);
      for (const mapId of Object.values(mapIds)) assert.ok(used.includes(mapId), `prog ${id} uses map ${mapId}`);
    }
  }
  // Replaced in place: still exactly one filter per hook.
  for (const pod of [a, b]) {
    for (const dir of ['ingress', 'egress']) {
      const shown = await sh('tc', ['-n', plan.nodeNetns, 'filter', 'show', 'dev', pod.hostIfname, dir]);
      assert.equal(shown.stdout.match(/ bpf .* handle /g)?.length, 1, `${pod.hostIfname} ${dir}: ${shown.stdout}`);
    }
  }
  assert.deepEqual(pinnedMapIds(), mapIds, 'pinned maps reused, not recreated');
  assert.deepEqual(policy.lookup(sentinel), { action: SluicePolicyAction.ALLOW, ruleId: 77 });
  assert.deepEqual(dumpIpcache(ipcache), ipcacheBefore);
  policy.delete(sentinel);
  policy.delete(denyC);
});

test('pinned maps survive the process that created them', async () => {
  const pinRoot = pinRootFor(labPaths, uniqueLabName());
  try {
    assert.equal(existsSync(pinRoot), false);
    const child = fileURLToPath(new URL('./pin-child.js', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [child, pinRoot]);
    assert.match(stdout, /written/);
    // The child has exited; only the pins hold the maps now.
    const lxc = loadLxc({ pinRoot, endpoint: { endpointId: 1, ipv4: 0 } });
    try {
      const key = { endpointId: 77, remoteIdentity: 7777, direction: SluiceDirection.EGRESS };
      assert.deepEqual(lxc.maps.policy.lookup(key), { action: SluicePolicyAction.DENY, ruleId: 7 });
      assert.deepEqual(dumpPolicy(lxc.maps.policy), [
        { endpointId: 77, direction: 'EGRESS', remoteIdentity: 7777, action: 'DENY', ruleId: 7 },
      ]);
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
      pinsSeen.push(existsSync(`${p.pinRoot}/sl_policy_v1`));
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
  for (const m of ['sl_ipcache_v1', 'sl_iphost_v1', 'sl_policy_v1', 'sl_events_v1', 'sl_metrics_v1', 'sl_config_v1']) {
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

async function waitFor(events: SluiceEvent[], match: (e: SluiceEvent) => boolean, ms = 2000): Promise<SluiceEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = events.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching event in ${ms} ms; got ${JSON.stringify(events, bigints)}`);
    await delay(20);
  }
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
