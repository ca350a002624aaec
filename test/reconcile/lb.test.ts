/**
 * The load-balancer owner over real pinned maps (created by loading lxc.o
 * into a /sys/fs/bpf/sluice-lba-* pin dir, removed in finally): Services and
 * slices added, changed and deleted; ids kept by a new owner instance
 * reading the maps (an agent restart); a full backend map; what
 * `sluice lb list` reads back; a change touches only its Service's
 * entries; a restart read ahead by prefetch().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { removePinDir } from '../../src/datapath/bpffs.js';
import { SluiceLbBackendFlags, SluiceLbScope, SluiceLbSet, type LbBackend, type LbSvcEntry, type LbSvcKey, type LbTableKey } from '../../src/datapath/generated/abi.js';
import { formatIpv4, parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { frontendRef, type GoneUdpBackend } from '../../src/datapath/maps/lb-sock.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { lbList, type LbListRow } from '../../src/cli/lb-list.js';
import type { EndpointSlice, Service, SliceEndpoint } from '../../src/lb/model.js';
import { LbOwner, type LbOwnerMaps, type LbRoundInput, type LbTablesStore } from '../../src/reconcile/lb.js';
import { runRound } from '../../src/reconcile/round.js';
import { createLbPinDir, lbEndpoint, lbService, lbSlice, withLbMaps } from '../helpers/lb-fixtures.js';

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
      raw: tables.raw, keys: () => tables.keys(), deleteMany: (ks) => tables.deleteMany(ks),
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

/** The owner's maps, with the service id of every entry written or deleted (tables: by key) recorded in `touched`. */
function recording(maps: PinnedDatapathMaps): { readonly lb: LbOwnerMaps; readonly touched: number[]; tableReads: number } {
  const touched: number[] = [];
  const { services, backends, tables } = maps.lb;
  const out = {
    touched,
    tableReads: 0,
    lb: {
      ...maps.lb,
      services: {
        entries: () => services.entries(),
        update: (k: LbSvcKey, v: LbSvcEntry) => { touched.push(v.serviceId); services.update(k, v); },
        updateBatch: (es: ReadonlyArray<readonly [LbSvcKey, LbSvcEntry]>) => { touched.push(...es.map(([, v]) => v.serviceId)); return services.updateBatch(es); },
        delete: (k: LbSvcKey) => { touched.push(services.lookup(k)?.serviceId ?? -1); return services.delete(k); },
      },
      backends: {
        entries: () => backends.entries(),
        update: (k: number, v: LbBackend) => { touched.push(v.serviceId); backends.update(k, v); },
        updateBatch: (es: ReadonlyArray<readonly [number, LbBackend]>) => { touched.push(...es.map(([, v]) => v.serviceId)); return backends.updateBatch(es); },
        delete: (k: number) => { touched.push(backends.lookup(k)?.serviceId ?? -1); return backends.delete(k); },
      },
      tables: {
        raw: tables.raw, keys: () => tables.keys(),
        deleteMany: (ks: readonly LbTableKey[]) => { touched.push(...ks.map((k) => k.serviceId)); return tables.deleteMany(ks); },
        replace: (k: LbTableKey, ids: ArrayLike<number>) => { touched.push(k.serviceId); tables.replace(k, ids); },
        replaceMany: (t: ReadonlyArray<readonly [LbTableKey, ArrayLike<number>]>) => { touched.push(...t.map(([k]) => k.serviceId)); tables.replaceMany(t); },
        read: (k: LbTableKey) => { out.tableReads++; return tables.read(k); },
      },
    },
  };
  return out;
}

const serviceIdOf = (maps: PinnedDatapathMaps, vip: string, port = 80): number | undefined =>
  maps.lb.services.lookup({ addr: parseIpv4(vip), port, protocol: 6, scope: SluiceLbScope.POD })?.serviceId;

test('a change to one Service touches only its entries; adding and deleting one touches only that one', () => {
  withLbMaps((maps) => {
    const rec = recording(maps);
    const o = new LbOwner(rec.lb, { algorithm: 'maglev', maglevTableSize: M });
    const services = Array.from({ length: 20 }, (_, i) => svc(`s${i}`, `10.96.1.${i}`));
    let slices = services.map((s, i) => slice(s.name, [ep(`10.0.${i}.1`), ep(`10.0.${i}.2`)]));
    assert.equal(runRound([o], input(services, slices)).owners[0]?.complete, true);
    const before = new Map(lbList(maps.lb).map((r) => [r.frontend, r]));

    rec.touched.length = 0;
    slices = slices.map((s, i) => (i === 7 ? slice('s7', [ep('10.0.7.1'), ep('10.0.7.2'), ep('10.0.7.3')]) : s));
    const r = runRound([o], input(services, slices));
    assert.equal(r.owners[0]?.complete, true);
    const s7 = serviceIdOf(maps, '10.96.1.7');
    assert.deepEqual([...new Set(rec.touched)], [s7], 'only s7\'s entries are written');
    assert.equal(r.operations, 2, 'its new backend and its table');
    for (const row of lbList(maps.lb)) if (row.frontend !== '10.96.1.7:80/TCP') assert.deepEqual(row, before.get(row.frontend), `${row.frontend} as it was`);
    assert.deepEqual(backendsOf(listed(maps).get('10.96.1.7:80/TCP pod')).map((s) => s.replace(/ \d+$/, '')),
      ['10.0.7.1:8080 active', '10.0.7.2:8080 active', '10.0.7.3:8080 active']);

    rec.touched.length = 0;
    const added = svc('new', '10.96.2.1');
    assert.equal(runRound([o], input([...services, added], [...slices, slice('new', [ep('10.0.99.1')])])).owners[0]?.complete, true);
    const newId = serviceIdOf(maps, '10.96.2.1');
    assert.ok(newId !== undefined && ![...before.values()].some((row) => row.serviceId === newId), 'a new id');
    assert.deepEqual([...new Set(rec.touched)], [newId], 'only the new Service\'s entries are written');

    rec.touched.length = 0;
    const s3 = serviceIdOf(maps, '10.96.1.3');
    assert.equal(runRound([o], input([...services.filter((s) => s.name !== 's3'), added], [...slices, slice('new', [ep('10.0.99.1')])])).owners[0]?.complete, true);
    assert.deepEqual([...new Set(rec.touched)], [s3], 'only s3\'s entries are deleted');
    assert.equal(serviceIdOf(maps, '10.96.1.3'), undefined);
    assert.equal(lbList(maps.lb).length, 20);
    assert.equal(rec.tableReads, 0, 'no round read a table back');
  });
});

test('a frontend entry moves from a deleted Service to the one that also wanted it, in one round', () => {
  withLbMaps((maps) => {
    const o = owner(maps);
    const a = svc('a', '10.96.0.10', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] });
    const b = svc('b', '10.96.0.11', { ports: [{ name: 'http', protocol: 'TCP', port: 30080 }], externalIPs: ['192.168.1.5'] });
    const slices = [slice('a', [ep('10.0.0.1')]), slice('b', [ep('10.0.0.2')])];
    assert.equal(runRound([o], input([a, b], slices)).owners[0]?.complete, true);
    const aId = serviceIdOf(maps, '192.168.1.5', 30080);
    assert.equal(aId, serviceIdOf(maps, '10.96.0.10'));
    assert.equal(runRound([o], input([b], slices)).owners[0]?.complete, true);
    const bId = serviceIdOf(maps, '10.96.0.11', 30080);
    assert.notEqual(bId, aId);
    assert.equal(serviceIdOf(maps, '192.168.1.5', 30080), bId);
    assert.equal(maps.lb.services.lookup({ addr: parseIpv4('192.168.1.5'), port: 30080, protocol: 6, scope: SluiceLbScope.EXTERNAL })?.serviceId, bId);
    assert.deepEqual(backendsOf(listed(maps).get('192.168.1.5:30080/TCP external')).map((s) => s.replace(/ \d+$/, '')), ['10.0.0.2:8080 active']);
    assert.equal(serviceIdOf(maps, '10.96.0.10'), undefined);
  });
});

test('a change that does not fit fails closed for that Service only, the next rounds retry from a read-back and recover', () => {
  withLbMaps((maps) => {
    const rec = recording(maps);
    const o = new LbOwner(rec.lb, { algorithm: 'maglev', maglevTableSize: M });
    const a = svc('a', '10.96.0.10');
    const b = svc('b', '10.96.0.11');
    const slices = [slice('a', [ep('10.0.0.1')]), slice('b', [ep('10.0.0.2')])];
    assert.equal(runRound([o], input([a, b], slices)).owners[0]?.complete, true);
    const before = lbList(maps.lb);
    const aId = serviceIdOf(maps, '10.96.0.10');

    // c needs a third table: the outer map holds two.
    const c = svc('c', '10.96.0.12');
    const withC = [...slices, slice('c', [ep('10.0.0.3')])];
    rec.touched.length = 0;
    const r = runRound([o], input([a, b, c], withC));
    assert.equal(r.owners[0]?.complete, false);
    assert.deepEqual(r.owners[0]?.failures.map((f) => [f.step, f.errno]), [['lb-table-replace', constants.errno.E2BIG]]);
    assert.equal(serviceIdOf(maps, '10.96.0.12'), undefined, 'no frontend for c');
    assert.deepEqual(lbList(maps.lb), before, 'a and b untouched');
    const cIds = new Set(rec.touched);
    assert.equal(cIds.size, 1, 'only c\'s entries were written');

    // The same input again: read back, the same failure, nothing else written.
    rec.touched.length = 0;
    const again = runRound([o], input([a, b, c], withC));
    assert.equal(again.owners[0]?.complete, false);
    assert.deepEqual([...new Set(rec.touched)], [...cIds], 'c keeps its id');
    assert.deepEqual(lbList(maps.lb), before);

    // b goes: its table leaves room, c is programmed by the next round at the latest, with the id it had.
    runRound([o], input([a, c], withC));
    assert.equal(serviceIdOf(maps, '10.96.0.11'), undefined);
    const last = runRound([o], input([a, c], withC));
    assert.equal(last.owners[0]?.complete, true, JSON.stringify(last.owners[0]?.failures));
    assert.equal(serviceIdOf(maps, '10.96.0.12'), [...cIds][0]);
    assert.equal(serviceIdOf(maps, '10.96.0.10'), aId);
    assert.deepEqual(backendsOf(listed(maps).get('10.96.0.12:80/TCP pod')).map((s) => s.replace(/ \d+$/, '')), ['10.0.0.3:8080 active']);
  }, { sl_lb_tbl_v1: 2 });
});

test('prefetch() reads the maps ahead of a restart with the event loop running; the round after it reads no table, writes nothing, keeps ids', async () => {
  const pinDir = createLbPinDir();
  try {
    const maps = openPinnedDatapathMaps(pinDir);
    try {
      const services = [svc('a', '10.96.0.10'), svc('b', '10.96.0.11')];
      const slices = [slice('a', [ep('10.0.0.1'), ep('10.0.0.2')]), slice('b', [ep('10.0.0.3')])];
      assert.equal(runRound([owner(maps)], input(services, slices)).owners[0]?.complete, true);
      const before = lbList(maps.lb);

      const rec = recording(maps);
      const restarted = new LbOwner(rec.lb, { algorithm: 'maglev', maglevTableSize: M });
      let ran = false;
      setImmediate(() => { ran = true; });
      await restarted.prefetch(input(services, slices), 0);
      assert.ok(ran, 'the event loop ran while it read');
      assert.equal(rec.tableReads, 2, 'each table read once, ahead');
      const r = runRound([restarted], input(services, slices));
      assert.equal(r.planned, 0);
      assert.equal(rec.tableReads, 2, 'the round read none');
      assert.deepEqual(lbList(maps.lb), before);

      // A change after it keeps every id.
      assert.equal(runRound([restarted], input(services, [slices[0] as EndpointSlice, slice('b', [ep('10.0.0.3'), ep('10.0.0.4')])])).owners[0]?.complete, true);
      const after = new Map(lbList(maps.lb).map((row) => [row.frontend, row]));
      for (const row of before) assert.equal(after.get(row.frontend)?.serviceId, row.serviceId);
    } finally {
      maps.close();
    }
  } finally {
    removePinDir(pinDir);
  }
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

test('a UDP backend that leaves its Service: the node\'s sockets connected to it are closed, named with the Service\'s frontends; TCP backends are not; a refusal is reported', () => {
  withLbMaps((maps) => {
    const o = owner(maps);
    const calls: GoneUdpBackend[][] = [];
    o.useHostSockets({ terminate: (gone) => { calls.push([...gone]); return gone.length; } });
    const called = (): [string, number, string[]][][] => calls.map((c) => c.map((g) => [formatIpv4(g.addr), g.port, [...g.frontends]]));
    const dns = svc('dns', '10.96.0.10', { ports: [{ name: 'udp', protocol: 'UDP', port: 53 }, { name: 'tcp', protocol: 'TCP', port: 53 }] });
    const dnsSlice = (...ips: string[]): EndpointSlice => ({
      ...slice('dns', ips.map((ip) => ep(ip))),
      ports: [{ name: 'udp', protocol: 'UDP', port: 5353 }, { name: 'tcp', protocol: 'TCP', port: 5353 }],
    });
    const vip = frontendRef(parseIpv4('10.96.0.10'), 53);
    assert.equal(runRound([o], input([dns], [dnsSlice('10.0.0.1', '10.0.0.2')])).owners[0]?.complete, true);
    assert.deepEqual(calls, [], 'no backend left');

    // 10.0.0.2 leaves: its UDP backend only (the TCP one of the same address and port is left to TCP).
    assert.equal(runRound([o], input([dns], [dnsSlice('10.0.0.1')])).owners[0]?.complete, true);
    assert.deepEqual(called(), [[['10.0.0.2', 5353, [vip]]]]);

    // The Service goes: its last backend, with the frontends the same round deletes.
    calls.length = 0;
    assert.equal(runRound([o], input([], [])).owners[0]?.complete, true);
    assert.deepEqual(called(), [[['10.0.0.1', 5353, [vip]]]]);

    // A kernel that refuses is reported as the step's failure; the maps are as wanted all the same.
    o.useHostSockets({ terminate: () => { throw Object.assign(new Error('close the UDP socket: Operation not permitted'), { errno: constants.errno.EPERM }); } });
    runRound([o], input([dns], [dnsSlice('10.0.0.1', '10.0.0.2')]));
    const r = runRound([o], input([dns], [dnsSlice('10.0.0.1')]));
    assert.deepEqual(r.owners[0]?.failures.map((f) => [f.step, f.map, f.key]), [['lb-host-udp-close', 'lb-sock', '10.0.0.2:5353']]);
    assert.deepEqual([...maps.lb.backends.entries()].map(([, b]) => formatIpv4(b.addr)), ['10.0.0.1', '10.0.0.1']);
  });
});
