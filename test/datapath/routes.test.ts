/**
 * rtnlNodeNetwork (src/datapath/routes.ts) on a real kernel, in a namespace
 * of the test's own (sluice-hn-rt<random>, a veth fab0 with 172.30.0.11/24):
 * routes of the owner's protocol listed, replaced and deleted (others never
 * listed), the vxlan device as asked, FDB and neighbour entries set, listed
 * and deleted — each checked against what `ip`/`bridge` show. The fabric
 * program's attach is covered by the lab tests.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AF_BRIDGE, AF_INET, ROUTE_PROTOCOL } from '../../src/reconcile/node-routes.js';

const ns = `sluice-hn-rt${randomBytes(3).toString('hex')}`;
const child = fileURLToPath(new URL('./routes-child.js', import.meta.url));

function ip(...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
}

function step<T>(name: string, arg: unknown = null): T {
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, child, '/nonexistent', name, JSON.stringify(arg)], { encoding: 'utf8' });
  return JSON.parse(out) as T;
}

before(() => {
  execFileSync('ip', ['netns', 'add', ns]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'fab0', 'mtu', '1550', 'type', 'veth', 'peer', 'name', 'fabpeer', 'mtu', '1550');
  ip('addr', 'add', '172.30.0.11/24', 'dev', 'fab0');
  ip('link', 'set', 'fabpeer', 'up');
  ip('link', 'set', 'fab0', 'up');
});

after(() => {
  execFileSync('ip', ['netns', 'delete', ns]);
});

test('routes of the owner\'s protocol: replaced, listed, deleted; a route of another protocol is not listed', () => {
  const fab = step<{ ifindex: number; mtu: number }>('link', { name: 'fab0' });
  assert.equal(fab.mtu, 1550);
  ip('route', 'add', '10.77.0.0/24', 'via', '172.30.0.99', 'proto', 'static');
  step('set-route', { dst: '10.9.1.0/24', gateway: '172.30.0.12', ifindex: fab.ifindex, onlink: false });
  step('set-route', { dst: '10.9.2.0/24', gateway: '172.30.0.13', ifindex: fab.ifindex, onlink: false });
  step('set-route', { dst: '10.9.2.0/24', gateway: '172.30.0.14', ifindex: fab.ifindex, onlink: false });
  assert.deepEqual(step('list-routes'), [
    { dst: '10.9.1.0/24', gateway: '172.30.0.12', ifindex: fab.ifindex, onlink: false },
    { dst: '10.9.2.0/24', gateway: '172.30.0.14', ifindex: fab.ifindex, onlink: false },
  ]);
  const shown = JSON.parse(ip('-j', 'route', 'show', 'proto', String(ROUTE_PROTOCOL))) as { dst: string; gateway: string }[];
  assert.deepEqual(shown.map((r) => `${r.dst} ${r.gateway}`), ['10.9.1.0/24 172.30.0.12', '10.9.2.0/24 172.30.0.14']);
  step('del-route', { dst: '10.9.1.0/24' });
  step('del-route', { dst: '10.9.1.0/24' }); // gone already: no error
  assert.deepEqual(step<{ dst: string }[]>('list-routes').map((r) => r.dst), ['10.9.2.0/24']);
  assert.match(ip('route', 'show', '10.77.0.0/24'), /via 172\.30\.0\.99/, 'the other protocol\'s route untouched');
});

test('vxlan device, FDB and neighbour entries', () => {
  step('create-vxlan', { name: 'sluice_vxlan', vni: 2, port: 8472, local: '172.30.0.11', device: 'fab0', mac: '02:5c:ac:1e:00:0b', mtu: 1500 });
  const [l] = JSON.parse(ip('-d', '-j', 'link', 'show', 'sluice_vxlan')) as { mtu: number; address: string; operstate: string; flags: string[]; linkinfo: { info_data: { id: number; port: number; local: string; learning?: boolean } } }[];
  assert.deepEqual([l?.mtu, l?.address, l?.linkinfo.info_data.id, l?.linkinfo.info_data.port, l?.linkinfo.info_data.local, l?.flags.includes('UP')],
    [1500, '02:5c:ac:1e:00:0b', 2, 8472, '172.30.0.11', true]);
  const vx = step<{ ifindex: number; kind: string }>('link', { name: 'sluice_vxlan' });
  assert.equal(vx.kind, 'vxlan');
  const fdb = { dst: '172.30.0.12', mac: '02:5c:ac:1e:00:0c' };
  const nb = { dst: '10.9.1.0', mac: '02:5c:ac:1e:00:0c' };
  step('set-neigh', { ifindex: vx.ifindex, family: AF_BRIDGE, entry: fdb });
  step('set-neigh', { ifindex: vx.ifindex, family: AF_INET, entry: nb });
  assert.deepEqual(step('list-neigh', { ifindex: vx.ifindex, family: AF_BRIDGE }), [fdb]);
  assert.deepEqual(step('list-neigh', { ifindex: vx.ifindex, family: AF_INET }), [nb]);
  assert.match(execFileSync('bridge', ['-n', ns, 'fdb', 'show', 'dev', 'sluice_vxlan'], { encoding: 'utf8' }), /02:5c:ac:1e:00:0c dst 172\.30\.0\.12 self permanent/);
  assert.match(ip('neigh', 'show', 'dev', 'sluice_vxlan'), /10\.9\.1\.0 lladdr 02:5c:ac:1e:00:0c PERMANENT/);
  step('set-route', { dst: '10.9.1.0/24', gateway: '10.9.1.0', ifindex: vx.ifindex, onlink: true });
  assert.match(ip('route', 'show', '10.9.1.0/24'), /via 10\.9\.1\.0 dev sluice_vxlan proto 211 onlink/);
  step('del-neigh', { ifindex: vx.ifindex, family: AF_BRIDGE, entry: fdb });
  step('del-neigh', { ifindex: vx.ifindex, family: AF_INET, entry: nb });
  assert.deepEqual(step('list-neigh', { ifindex: vx.ifindex, family: AF_BRIDGE }), []);
  assert.deepEqual(step('list-neigh', { ifindex: vx.ifindex, family: AF_INET }), []);
});
