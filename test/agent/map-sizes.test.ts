/**
 * Map sizes on a real kernel (src/agent/datapath/map-sizes.ts), and what a
 * map that is full reports (datapath/reconcilers.ts ownerFailures): maps created with
 * the configured sizes, pins of another size refused naming both sizes
 * (never recreated), a loader without sizes (the CNI) reusing the agent's
 * maps, and per-map failures (iphost vs ipcache by prefix, E2BIG, the entry
 * and how many more) from an apply into full maps.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/agent/config.js';
import { openBpfDatapath } from '../../src/agent/datapath/reconcilers.js';
import { AGENT_MAP_PINS, agentMaps, createDatapathMaps, type MapSizes } from '../../src/agent/datapath/map-sizes.js';
import { AgentError } from '../../src/agent/errors.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { BpfError } from '../../src/datapath/errors.js';
import { FRAG_LAYOUT } from '../../src/datapath/maps/frag.js';
import { applyState } from './helpers/apply-state.js';
import { EMPTY_DATAPATH_STATE, endpointDirection, ipcachePrefix, packPolicyKey, type DatapathState } from '../../src/policy/datapath-state.js';
import { createTestPinRoot, removeTestPinRoot } from '../helpers/pins.js';

const SMALL: MapSizes = { ipcache: 2, iphost: 3, policy: 4, endpoints: 5, conntrack: 64, fragments: 128, interfaces: 6 };

async function withPinDir(fn: (pinDir: string) => Promise<void> | void): Promise<void> {
  const pinDir = createTestPinRoot();
  try {
    await fn(pinDir);
  } finally {
    removeTestPinRoot(pinDir);
  }
}

function pinnedSizes(pinDir: string): Record<string, number> {
  const maps = openPinnedDatapathMaps(pinDir);
  try {
    return Object.fromEntries(agentMaps(maps).map(([name, raw]) => [name, raw.info.maxEntries]));
  } finally {
    maps.close();
  }
}

test('the maps are created with the configured sizes, once', async () => {
  await withPinDir((pinDir) => {
    assert.equal(createDatapathMaps({ pinDir, mapSizes: SMALL }), true);
    assert.deepEqual(pinnedSizes(pinDir), { ...SMALL });
    assert.equal(createDatapathMaps({ pinDir, mapSizes: SMALL }), false, 'all there: nothing loaded');
    openBpfDatapath({ pinDir, mapSizes: SMALL }).close();
  });
});

test('the interfaces map holds as many entries as configured, and the kernel refuses one more', async () => {
  await withPinDir((pinDir) => {
    const dp = openBpfDatapath({ pinDir, mapSizes: SMALL });
    try {
      const entry = { endpointId: 1, ipv4: 0x0a000001 };
      for (let ifindex = 1; ifindex <= SMALL.interfaces; ifindex++) dp.maps.interfaces.update(ifindex, entry);
      assert.throws(() => dp.maps.interfaces.update(SMALL.interfaces + 1, entry), (e: unknown) => e instanceof BpfError && e.code === 'E2BIG');
    } finally {
      dp.close();
    }
  });
});

test('the defaults are applied too (not lxc.o\'s compiled sizes)', async () => {
  await withPinDir((pinDir) => {
    openBpfDatapath({ pinDir, mapSizes: DEFAULT_CONFIG.mapSizes }).close();
    assert.deepEqual(pinnedSizes(pinDir), { ...DEFAULT_CONFIG.mapSizes });
  });
});

test('pinned maps of another size: an error naming the map and both sizes; the pins and their entries stay', async () => {
  await withPinDir((pinDir) => {
    const dp = openBpfDatapath({ pinDir, mapSizes: SMALL });
    const epdir = endpointDirection(9, 'ingress');
    const to: DatapathState = { ...EMPTY_DATAPATH_STATE, policy: new Map([[epdir, new Map([[packPolicyKey(500, { kind: 'any' }), 1]])]]) };
    assert.deepEqual((applyState(dp, to)).failures, []);
    dp.close();

    assert.throws(
      () => openBpfDatapath({ pinDir, mapSizes: { ...SMALL, policy: 8 } }),
      (e: unknown) => e instanceof AgentError && e.code === 'invalid-config' && e.field === 'mapSizes.policy' &&
        e.message.includes(`map ${AGENT_MAP_PINS.policy} is pinned in ${pinDir} with max_entries 4, configured 8`),
    );
    // Some map missing: the load that creates it refuses the mismatching pin (the native check).
    rmSync(join(pinDir, FRAG_LAYOUT.name));
    assert.throws(
      () => createDatapathMaps({ pinDir, mapSizes: { ...SMALL, policy: 8 } }),
      (e: unknown) => e instanceof BpfError && e.op === 'max_entries' && e.code === 'EEXIST' &&
        e.message.includes(`map '${AGENT_MAP_PINS.policy}' is pinned at ${join(pinDir, AGENT_MAP_PINS.policy)} with max_entries 4, wanted 8`),
    );
    const after = openBpfDatapath({ pinDir, mapSizes: SMALL });
    try {
      assert.equal(after.maps.policy.raw.info.maxEntries, 4);
      assert.equal([...after.maps.policy.raw.keys()].length, 1, 'the entry is still there');
    } finally {
      after.close();
    }
  });
});

test('a loader that asks for no sizes (the CNI) reuses the agent\'s maps at their size', async () => {
  await withPinDir((pinDir) => {
    createDatapathMaps({ pinDir, mapSizes: SMALL });
    const pinned = openPinnedDatapathMaps(pinDir);
    const lxc = loadLxc({ pinRoot: pinDir });
    try {
      const ids = new Map(agentMaps(pinned).map(([name, raw]) => [name, raw.info.id]));
      for (const [name, raw] of agentMaps(lxc.maps)) {
        assert.equal(raw.info.id, ids.get(name), `${name}: the pinned map, not a new one`);
        assert.equal(raw.info.maxEntries, SMALL[name]);
      }
    } finally {
      lxc.close();
      pinned.close();
    }
  });
});

test('an apply into full maps: one failure per map, iphost told from ipcache, with the errno and the entry', async () => {
  await withPinDir((pinDir) => {
    const dp = openBpfDatapath({ pinDir, mapSizes: { ...SMALL, iphost: 1, ipcache: 1 } });
    try {
      const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
      const ports = [8080, 8081, 8082, 8083, 8084, 8085];
      const to: DatapathState = {
        ipcache: new Map([
          [ipcachePrefix(ip(10, 0, 0, 1), 32), 300], [ipcachePrefix(ip(10, 0, 0, 2), 32), 301],
          [ipcachePrefix(ip(10, 1, 0, 0), 16), 400], [ipcachePrefix(ip(10, 2, 0, 0), 16), 401],
        ]),
        endpoints: new Map(),
        // Identity 999 has no address: no ipcache failure can taint (and drop) these allows.
        policy: new Map([[endpointDirection(7, 'ingress'), new Map(ports.map((port, i) => [
          packPolicyKey(999, { kind: 'port', protocol: 'TCP', prefix: { port, bits: 16 } }), i + 1,
        ] as const))]]),
      };
      const result = applyState(dp, to);
      const byMap = new Map(result.failures.map((f) => [f.map, f]));
      assert.deepEqual([...byMap.keys()].sort(), ['ipcache', 'iphost', 'policy']);
      // A full hash answers E2BIG, a full LPM trie ENOSPC.
      for (const f of result.failures) assert.equal(f.code, f.map === 'ipcache' ? 'ENOSPC' : 'E2BIG', `${f.map}: ${f.message}`);
      assert.match(byMap.get('iphost')?.message ?? '', /^ipcache-upsert 10\.0\.0\.[12]\/32: /);
      assert.match(byMap.get('ipcache')?.message ?? '', /^ipcache-upsert 10\.[12]\.0\.0\/16: /);
      assert.match(byMap.get('policy')?.message ?? '', /^policy-upsert endpoint 7 ingress identity 999 TCP port 808\d: .* \(and 1 more\)$/);
      assert.equal(result.applied, 1 + 1 + 4, 'what fit was written');
      assert.deepEqual(dp.mapUsage().filter((u) => u.entries === u.maxEntries).map((u) => u.map).sort(), ['ipcache', 'iphost', 'policy']);
    } finally {
      dp.close();
    }
  });
});
