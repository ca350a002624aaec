/**
 * The load-balancer owner over real pinned maps (created by loading lxc.o
 * into a /sys/fs/bpf/sluice-lba-* pin dir, removed in finally): Services and
 * slices added, changed and deleted; ids kept by a new owner instance
 * reading the maps (an agent restart); a full backend map; what
 * `sluice lb list` reads back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { SluiceLbBackendFlags, SluiceLbScope, SluiceLbSet } from '../../src/datapath/generated/abi.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import type { PinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { lbList, type LbListRow } from '../../src/cli/lb-list.js';
import type { EndpointSlice, Service, SliceEndpoint } from '../../src/lb/model.js';
import { LbOwner, type LbRoundInput, type LbTablesStore } from '../../src/reconcile/lb.js';
import { runRound } from '../../src/reconcile/round.js';
import { lbEndpoint, lbService, lbSlice, withLbMaps } from '../helpers/lb-fixtures.js';

const M = 251;
const svc = lbService;
const ep = lbEndpoint;
const slice = (service: string, endpoints: SliceEndpoint[], name?: string): EndpointSlice => lbSlice(service, endpoints, name);
function input(services: Service[], slices: EndpointSlice[]): LbRoundInput {
  return { lb: { services, slices, node: { name: 'n1' }, nodeAddresses: ['192.168.1.5'] } };
}
const owner = (maps: PinnedDatapathMaps): LbOwner => new LbOwner(maps.lb, { algorithm: 'maglev', maglevTableSize: M });

/** frontend → backend address → its state and slots, as `sluice lb list` reads the maps. */
function listed(maps: PinnedDatapathMaps): Map<string, LbListRow> {
  return new Map(lbList(maps.lb).map((r) => [`${r.frontend} ${r.scope}`, r]));
}
const backendsOf = (r: LbListRow | undefined): string[] => (r?.backends ?? []).map((b) => `${b.address} ${b.state}${b.state === 'active' ? ` ${b.slots}` : ''}`);

test('add, change and delete a Service and its slices: the maps follow, ids stay', () => {
  withLbMaps((maps) => {
    const o = owner(maps);
    const web = svc('web', '10.96.0.10', { affinitySeconds: 300 });
    let r = runRound([o], input([web], [slice('web', [ep('10.0.0.1'), ep('10.0.0.2')])]));
    assert.deepEqual(r.owners[0]?.failures, []);
    assert.equal(r.owners[0]?.complete, true);
    let rows = listed(maps);
    assert.deepEqual([...rows.keys()], ['10.96.0.10:80/TCP pod']);
    const first = rows.get('10.96.0.10:80/TCP pod');
    assert.equal(first?.algorithm, 'maglev');
    assert.equal(first?.tableSize, M);
    assert.deepEqual(first?.backends.map((b) => b.address), ['10.0.0.1:8080', '10.0.0.2:8080']);
    assert.ok(first?.backends.every((b) => b.state === 'active' && (b.slots === 125 || b.slots === 126)), JSON.stringify(first?.backends));
    const ids = new Map(first?.backends.map((b) => [b.address, b.backendId]));

    // A second slice (another manager) adds an endpoint; one endpoint starts terminating while still serving.
    r = runRound([o], input([web], [
      slice('web', [ep('10.0.0.1'), ep('10.0.0.2', { ready: false, terminating: true })]),
      slice('web', [ep('10.0.0.3')], 'web-by-hand'),
    ]));
    assert.equal(r.owners[0]?.complete, true);
    rows = listed(maps);
    const second = rows.get('10.96.0.10:80/TCP pod');
    assert.equal(second?.serviceId, first?.serviceId, 'the service keeps its id');
    assert.deepEqual(backendsOf(second).map((s) => s.replace(/ \d+$/, '')), ['10.0.0.1:8080 active', '10.0.0.3:8080 active', '10.0.0.2:8080 serving-only']);
    for (const b of second?.backends ?? []) if (ids.has(b.address)) assert.equal(b.backendId, ids.get(b.address), `${b.address} keeps its backend id`);
    const flags = [...maps.lb.backends.entries()].find(([id]) => id === ids.get('10.0.0.2:8080'))?.[1].flags;
    assert.equal(flags, SluiceLbBackendFlags.NOT_SELECTABLE);

    // The terminating endpoint stops serving: it leaves the backends (its UDP flows move).
    r = runRound([o], input([web], [slice('web', [ep('10.0.0.1'), ep('10.0.0.2', { ready: false, serving: false, terminating: true })]), slice('web', [ep('10.0.0.3')], 'web-by-hand')]));
    assert.equal(r.owners[0]?.complete, true);
    assert.deepEqual([...maps.lb.backends.entries()].map(([, b]) => b.addr).sort(), [parseIpv4('10.0.0.1'), parseIpv4('10.0.0.3')].sort());

    // Unchanged input: nothing planned, nothing read back.
    assert.equal(runRound([o], input([web], [slice('web', [ep('10.0.0.1'), ep('10.0.0.2', { ready: false, serving: false, terminating: true })]), slice('web', [ep('10.0.0.3')], 'web-by-hand')])).planned, 0);

    // Deleting the Service removes its frontends, table, backends and its clients' affinities; others stay.
    const sid = first?.serviceId ?? 0;
    maps.lb.affinity.update({ serviceId: sid, clientAddr: parseIpv4('10.0.9.9') }, { lastUsedNs: 1n, backendId: ids.get('10.0.0.1:8080') ?? 0 });
    maps.lb.affinity.update({ serviceId: sid + 100, clientAddr: parseIpv4('10.0.9.9') }, { lastUsedNs: 1n, backendId: 1 });
    const db = svc('db', '10.96.0.20');
    r = runRound([o], input([db], [slice('db', [ep('10.0.1.1')])]));
    assert.equal(r.owners[0]?.complete, true);
    rows = listed(maps);
    assert.deepEqual([...rows.keys()], ['10.96.0.20:80/TCP pod']);
    assert.notEqual(rows.get('10.96.0.20:80/TCP pod')?.serviceId, sid, 'a new service gets a new id');
    assert.deepEqual([...maps.lb.backends.entries()].map(([, b]) => b.addr), [parseIpv4('10.0.1.1')]);
    assert.deepEqual(maps.lb.tables.keys().map((k) => k.serviceId), [rows.get('10.96.0.20:80/TCP pod')?.serviceId]);
    assert.deepEqual([...maps.lb.affinity.entries()].map(([k]) => k.serviceId), [sid + 100], 'only the deleted service\'s affinities go');
  });
});

test('NodePort under externalTrafficPolicy Local: pod and external scopes per node address, each on its table; reject vs drop', () => {
  withLbMaps((maps) => {
    const np = svc('np', '10.96.0.30', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }], externalTrafficPolicy: 'Local', affinitySeconds: 30 });
    const empty = svc('empty', '10.96.0.31');
    const r = runRound([new LbOwner(maps.lb, { algorithm: 'random' })], input([np, empty], [slice('np', [ep('10.0.0.1', { nodeName: 'n1' }), ep('10.0.0.2')])]));
    assert.equal(r.owners[0]?.complete, true);
    const rows = listed(maps);
    assert.deepEqual([...rows.keys()].sort(), ['10.96.0.30:80/TCP pod', '10.96.0.31:80/TCP pod', '192.168.1.5:30080/TCP external', '192.168.1.5:30080/TCP pod']);
    assert.deepEqual(backendsOf(rows.get('192.168.1.5:30080/TCP external')), ['10.0.0.1:8080 active 1'], 'from outside: this node\'s endpoint only');
    assert.deepEqual(backendsOf(rows.get('192.168.1.5:30080/TCP pod')), ['10.0.0.1:8080 active 1', '10.0.0.2:8080 active 1'], 'pods: the cluster set');
    assert.equal(rows.get('192.168.1.5:30080/TCP external')?.backendSet, 'local');
    assert.equal(rows.get('192.168.1.5:30080/TCP external')?.masquerade, false, 'Local keeps the client\'s address');
    assert.equal(rows.get('192.168.1.5:30080/TCP external')?.affinityTimeoutS, 30);
    assert.equal(rows.get('192.168.1.5:30080/TCP external')?.algorithm, 'random');
    const e = rows.get('10.96.0.31:80/TCP pod');
    assert.deepEqual([e?.whenEmpty, e?.tableSize, e?.backends.length], ['reject', 0, 0], 'no endpoint anywhere: no table, reject');
    const key = { addr: parseIpv4('192.168.1.5'), port: 30080, protocol: 6, scope: SluiceLbScope.EXTERNAL };
    assert.equal(maps.lb.services.lookup(key)?.backendSet, SluiceLbSet.LOCAL);
  });
});

test('a new owner instance (agent restart) reads the ids back: nothing to write, and a change keeps them', () => {
  withLbMaps((maps) => {
    const services = [svc('a', '10.96.0.10'), svc('b', '10.96.0.11')];
    const slices = [slice('a', [ep('10.0.0.1'), ep('10.0.0.2')]), slice('b', [ep('10.0.0.3')])];
    assert.equal(runRound([owner(maps)], input(services, slices)).owners[0]?.complete, true);
    const before = lbList(maps.lb);

    const restarted = owner(maps);
    const again = runRound([restarted], input(services, slices));
    assert.equal(again.planned, 0, 'the maps already hold it');
    assert.deepEqual(lbList(maps.lb), before);

    // The restarted owner changes b: a's entries and every existing id stay.
    const r = runRound([restarted], input(services, [slices[0] as EndpointSlice, slice('b', [ep('10.0.0.3'), ep('10.0.0.4')])]));
    assert.equal(r.owners[0]?.complete, true);
    const after = new Map(lbList(maps.lb).map((row) => [row.frontend, row]));
    for (const row of before) {
      assert.equal(after.get(row.frontend)?.serviceId, row.serviceId, `${row.frontend} keeps its service id`);
      for (const b of row.backends) assert.ok(after.get(row.frontend)?.backends.some((x) => x.backendId === b.backendId && x.address === b.address), `${b.address} keeps id ${b.backendId}`);
    }
    const newId = after.get('10.96.0.11:80/TCP')?.backends.find((b) => b.address === '10.0.0.4:8080')?.backendId ?? 0;
    assert.ok(newId > Math.max(...before.flatMap((x) => x.backends.map((b) => b.backendId))), 'a new backend id counts up from the highest in the maps');
  });
});

test('a full backend map fails the owner: the new Service gets no frontend, the old one keeps working, the next round retries', () => {
  withLbMaps((maps) => {
    const o = owner(maps);
    const old = svc('old', '10.96.0.10');
    const oldSlice = slice('old', [ep('10.0.0.1')]);
    assert.equal(runRound([o], input([old], [oldSlice])).owners[0]?.complete, true);
    const before = lbList(maps.lb);

    const big = svc('big', '10.96.0.11');
    const bigSlice = slice('big', [ep('10.0.1.1'), ep('10.0.1.2'), ep('10.0.1.3')]);
    const r = runRound([o], input([old, big], [oldSlice, bigSlice]));
    const report = r.owners[0];
    assert.equal(report?.complete, false);
    assert.ok((report?.failures.length ?? 0) > 0);
    assert.ok(report?.failures.every((f) => f.map === 'lb-backends' && f.errno === constants.errno.E2BIG), JSON.stringify(report?.failures));
    assert.equal(maps.lb.services.lookup({ addr: parseIpv4('10.96.0.11'), port: 80, protocol: 6, scope: SluiceLbScope.POD }), undefined,
      'no frontend for a service whose backends are not all written');
    assert.equal(maps.lb.tables.keys().length, 1, 'no table for it either');
    assert.deepEqual(lbList(maps.lb).filter((x) => x.frontend.startsWith('10.96.0.10')), before, 'the old Service is untouched');

    // Room again (the big Service shrinks): the next round reads the maps back and completes.
    const r2 = runRound([o], input([old, big], [oldSlice, slice('big', [ep('10.0.1.1'), ep('10.0.1.2')])]));
    assert.equal(r2.owners[0]?.complete, true, JSON.stringify(r2.owners[0]?.failures));
    assert.deepEqual(backendsOf(listed(maps).get('10.96.0.11:80/TCP pod')).map((s) => s.replace(/ \d+$/, '')), ['10.0.1.1:8080 active', '10.0.1.2:8080 active']);
  }, { sl_lb_be_v1: 3 });
});

test('a full table map: the service whose table did not fit gets no frontend; the one that fit works; nothing is left half-written', () => {
  withLbMaps((maps) => {
    const tables = maps.lb.tables;
    let reads = 0;
    const counted: LbTablesStore = {
      raw: tables.raw, keys: () => tables.keys(), delete: (k) => tables.delete(k),
      replace: (k, ids) => tables.replace(k, ids), replaceMany: (t) => tables.replaceMany(t),
      read: (k) => {
        reads++;
        return tables.read(k);
      },
    };
    const o = new LbOwner({ ...maps.lb, tables: counted }, { algorithm: 'maglev', maglevTableSize: M });
    const services = [svc('a', '10.96.0.10'), svc('b', '10.96.0.11')];
    const r = runRound([o], input(services, [slice('a', [ep('10.0.0.1')]), slice('b', [ep('10.0.0.2')])]));
    assert.equal(r.owners[0]?.complete, false);
    assert.deepEqual(r.owners[0]?.failures.map((f) => [f.step, f.map]), [['lb-table-replace', 'lb-tables']]);
    const rows = lbList(maps.lb);
    assert.equal(rows.length, 1, 'one frontend: the service whose table is in place');
    const table = maps.lb.tables.keys()[0];
    assert.equal(rows[0]?.serviceId, table?.serviceId);
    assert.equal(rows[0]?.tableSize, M);

    // The next round reads the maps back, fails the same way (the map is still full), and writes nothing new.
    reads = 0;
    const again = runRound([o], input(services, [slice('a', [ep('10.0.0.1')]), slice('b', [ep('10.0.0.2')])]));
    assert.equal(again.owners[0]?.complete, false);
    assert.deepEqual(lbList(maps.lb), rows);
    assert.equal(reads, 0, 'the table in place was read before (same inner array): not read again');
    // A new owner (an agent restart) knows no inner array yet: it reads the table once.
    const restarted = new LbOwner({ ...maps.lb, tables: counted }, { algorithm: 'maglev', maglevTableSize: M });
    runRound([restarted], input(services, [slice('a', [ep('10.0.0.1')]), slice('b', [ep('10.0.0.2')])]));
    assert.equal(reads, 1);
  }, { sl_lb_tbl_v1: 1 });
});

test('a disabled owner (another proxy implements Services) desires nothing: it writes no Service and removes what the maps hold', () => {
  withLbMaps((maps) => {
    const services = [svc('a', '10.96.0.10')];
    const slices = [slice('a', [ep('10.0.0.1')])];
    assert.equal(runRound([owner(maps)], input(services, slices)).owners[0]?.complete, true);
    assert.equal(lbList(maps.lb).length, 1, 'an enabled owner wrote the Service');

    const off = new LbOwner(maps.lb, { enabled: false });
    const r = runRound([off], input(services, slices));
    assert.equal(r.owners[0]?.complete, true);
    assert.deepEqual(lbList(maps.lb), [], 'the restarted, disabled owner removed the frontend');
    assert.equal(runRound([off], input([...services, svc('b', '10.96.0.11')], slices)).planned, 0, 'a new Service changes nothing');
  });
});
