/**
 * The agent's BPF writer on real pinned maps (a private pin dir, removed in
 * finally), both of them full: the policy map has room for one entry, the
 * endpoints map exactly for the endpoints already there. An endpoint whose
 * allows do not fit is marked POLICY_INCOMPLETE by an update in place of its
 * existing key (the kernel accepts that in a full hash), with a revision
 * bump; the failure names the endpoint; a later apply with room clears the
 * flag. What a flagged endpoint does to packets: test/datapath/lxc-incomplete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { openBpfDatapath } from '../../src/agent/datapath/reconcilers.js';
import type { MapSizes } from '../../src/agent/datapath/map-sizes.js';
import { RETIRED_MAP_PINS } from '../../src/agent/datapath/retired-pins.js';
import { addon } from '../../src/datapath/addon.js';
import { LXC_MAP_LAYOUTS } from '../../src/datapath/lxc.js';
import { FRAG_LAYOUT } from '../../src/datapath/maps/frag.js';
import { openSharedLxc, sharedLxcDir } from '../../src/datapath/lxc-shared.js';
import { SluiceCtDefaultMs, SluiceEndpointFlags } from '../../src/datapath/generated/abi.js';
import { effectiveCtConfig } from '../../src/datapath/maps/ct-config.js';
import { runRound } from '../../src/reconcile/round.js';
import { applyState, currentState } from './helpers/apply-state.js';
import { compilePolicy, type CompiledPolicy } from '../../src/policy/compile.js';
import type { Cluster } from '../../src/policy/cluster.js';
import { netpol, pod, xyzCluster } from '../policy/xyz.js';
import { createTestPinRoot, removeTestPinRoot } from '../helpers/pins.js';

const { INGRESS_ISOLATED, POLICY_INCOMPLETE } = SluiceEndpointFlags;

const SMALL_SIZES: MapSizes = { ipcache: 64, iphost: 64, policy: 64, endpoints: 16, conntrack: 1024, fragments: 64, interfaces: 16 };

function compileAll(cluster: Cluster, previous?: CompiledPolicy): CompiledPolicy {
  return compilePolicy({ cluster, endpoints: new Map(cluster.pods.map((p, i) => [p.id, i + 1])) }, previous);
}

test('a full policy map: the endpoint is marked POLICY_INCOMPLETE in place in a full endpoints map, reported, then cleared', () => {
  const empty = compileAll(xyzCluster([]));
  const wide = compileAll(xyzCluster([
    netpol('x', 'a-ports', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }], ports: [{ port: 80 }, { port: 81 }, { port: 82 }] }] }),
  ]), empty);
  const endpoints = empty.datapath.endpoints.size;
  const sizes: MapSizes = { ...SMALL_SIZES, policy: 1, endpoints };
  const pinDir = createTestPinRoot();
  try {
    const dp = openBpfDatapath({ pinDir, mapSizes: sizes });
    try {
      // The endpoints are there (as the CNI path writes them), filling the endpoints map.
      assert.equal(dp.maps.endpoints.updateBatch([...empty.datapath.endpoints]), endpoints);
      assert.throws(() => dp.maps.endpoints.update(endpoints + 1, empty.datapath.endpoints.get(1)!),
        (e: { errno?: number }) => e.errno === constants.errno.E2BIG, 'the endpoints map is full');
      const revision = wide.datapath.endpoints.get(1)?.policyRevision ?? 0;

      const result = applyState(dp, wide.datapath);
      assert.equal(result.failures.length, 1, JSON.stringify(result.failures));
      const [f] = result.failures;
      assert.equal(f?.map, 'policy');
      assert.equal(f?.code, 'E2BIG');
      assert.deepEqual(f?.endpoints, [1]);
      assert.match(f?.message ?? '', /^policy-upsert endpoint 1 ingress identity \d+ TCP port 8\d: .* \(and 1 more\)$/);
      const marked = dp.maps.endpoints.lookup(1);
      assert.equal(marked?.flags, INGRESS_ISOLATED | POLICY_INCOMPLETE);
      assert.equal(marked?.policyRevision, revision + 1);
      assert.equal(dp.maps.endpoints.lookup(2)?.flags, 0, 'x/b untouched');

      // The agent reads back and plans from there; a policy that fits clears the flag.
      const current = { datapath: currentState(dp) };
      assert.equal((current.datapath.endpoints.get(1)?.flags ?? 0) & POLICY_INCOMPLETE, POLICY_INCOMPLETE, 'the flag reads back');
      const narrow = compileAll(xyzCluster([
        netpol('x', 'a-ports', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }], ports: [{ port: 80 }] }] }),
      ]), wide);
      const again = applyState(dp, narrow.datapath);
      assert.deepEqual(again.failures, []);
      assert.equal(dp.maps.endpoints.lookup(1)?.flags, INGRESS_ISOLATED, 'a complete apply clears the flag');
    } finally {
      dp.close();
    }
  } finally {
    removeTestPinRoot(pinDir);
  }
});

test('opening the datapath pins this build\'s node-shared lxc programs, so the first CNI ADD finds them loaded', () => {
  const pinDir = createTestPinRoot();
  try {
    const dp = openBpfDatapath({ pinDir, mapSizes: SMALL_SIZES });
    dp.close();
    assert.ok(existsSync(sharedLxcDir(pinDir)), 'the shared programs are pinned under the build\'s directory');
    const shared = openSharedLxc({ pinRoot: pinDir });
    try {
      assert.equal(shared.loaded, false, 'an ADD after the agent started runs no verifier');
    } finally {
      shared.close();
    }
  } finally {
    removeTestPinRoot(pinDir);
  }
});

test('opening the datapath removes the pins of replaced map layouts and only those', () => {
  const pinDir = createTestPinRoot();
  try {
    openBpfDatapath({ pinDir, mapSizes: SMALL_SIZES }).close();
    // An upgraded node: the old layouts' maps still pinned beside the new ones (any map will do as the stand-in).
    const native = addon();
    const fd = native.objGet(join(pinDir, FRAG_LAYOUT.name));
    try {
      for (const name of RETIRED_MAP_PINS) native.objPin(fd, join(pinDir, name));
    } finally {
      closeSync(fd);
    }
    const current = readdirSync(pinDir).filter((n) => !RETIRED_MAP_PINS.includes(n)).sort();
    assert.ok(current.length > 0 && LXC_MAP_LAYOUTS.every((l) => current.includes(l.name)));
    assert.deepEqual(LXC_MAP_LAYOUTS.filter((l) => RETIRED_MAP_PINS.includes(l.name)), [], 'no map this build uses is retired');

    const dp = openBpfDatapath({ pinDir, mapSizes: SMALL_SIZES });
    dp.close();
    assert.deepEqual([...dp.retiredPinsRemoved].sort(), RETIRED_MAP_PINS.map((n) => join(pinDir, n)).sort());
    assert.deepEqual(readdirSync(pinDir).sort(), current, 'every current pin stays');
  } finally {
    removeTestPinRoot(pinDir);
  }
});

test('an endpoint that goes takes its conntrack entries with it; other endpoints keep theirs', () => {
  const pinDir = createTestPinRoot();
  try {
    const dp = openBpfDatapath({ pinDir, mapSizes: SMALL_SIZES });
    try {
      const state = compileAll(xyzCluster([]));
      assert.deepEqual(applyState(dp, state.datapath).failures, []);
      const ct = (endpointId: number, port: number) => [
        { endpointId, localAddr: 0x0a090001, remoteAddr: 0x0a090102, localPort: port, remotePort: 80, protocol: 6 },
        { expiresNs: 1n << 62n, policyRevision: 1, ruleId: 0, origDirection: 1, tcpState: 0, flags: 0, tcpFlagsSeen: 0, natAddr: 0, natPort: 0, backendId: 0 },
      ] as const;
      for (const [k, v] of [ct(1, 40000), ct(1, 40001), ct(2, 40000)]) dp.maps.conntrack.update(k, v);
      // Endpoint 1 (x/a) goes: the next round retires its entry and its connections.
      const without = new Map(state.datapath.endpoints);
      without.delete(1);
      assert.deepEqual(applyState(dp, { ...state.datapath, endpoints: without }).failures, []);
      assert.equal(dp.maps.endpoints.lookup(1), undefined);
      assert.deepEqual([...dp.maps.conntrack.entries()].map(([k]) => [k.endpointId, k.localPort]), [[2, 40000]]);
    } finally {
      dp.close();
    }
  } finally {
    removeTestPinRoot(pinDir);
  }
});

test('the conntrack-config and lxc-interfaces owners write the pinned maps the programs read', () => {
  const pinDir = createTestPinRoot();
  try {
    const dp = openBpfDatapath({ pinDir, mapSizes: SMALL_SIZES });
    try {
      const round = runRound<{ conntrack: { udpMs: number }; interfaces: { hostIfindex: number; endpointId: number; ipv4: number }[] }>(
        [dp.ctConfigOwner, dp.lxcOwner], { conntrack: { udpMs: 5000 }, interfaces: [{ hostIfindex: 42, endpointId: 3, ipv4: 0x0a000003 }] });
      assert.deepEqual(round.owners.map((o) => [o.name, o.complete]), [['ct-config', true], ['lxc', true]]);
      assert.equal(effectiveCtConfig(dp.maps.ctConfig).udpMs, 5000);
      assert.equal(effectiveCtConfig(dp.maps.ctConfig).icmpMs, SluiceCtDefaultMs.ICMP_MS, 'unset: the default');
      assert.deepEqual(dp.maps.interfaces.lookup(42), { endpointId: 3, ipv4: 0x0a000003 });
      runRound([dp.lxcOwner], { interfaces: [] });
      assert.equal(dp.maps.interfaces.lookup(42), undefined, 'an interface no endpoint has any more is released');
    } finally {
      dp.close();
    }
  } finally {
    removeTestPinRoot(pinDir);
  }
});
