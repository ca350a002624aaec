/**
 * bpf/sock.c, the node's socket load balancer, with real sockets: a
 * namespace "node" whose loopback carries two backends' addresses (b1
 * 10.77.0.2, b2 10.77.0.3, each serving TCP 8080 and UDP 5353 and
 * answering with its own name), and a cgroup v2 directory the programs are
 * attached to. Clients run in the node's namespace inside that cgroup (the
 * node's own sockets), in it but outside the cgroup, and in another
 * namespace inside the cgroup (a pod's sockets): only the first are
 * translated. The frontend 10.96.0.10 has no route in the namespace, so an
 * untranslated connect fails with ENETUNREACH at once.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { createInterface } from 'node:readline';
import { frontendRef } from '../../src/datapath/maps/lb-sock.js';
import { attachSockLb, cgroupIdOf, detachSockLb, loadSockLb, sockLbAttached, SOCK_HOOKS } from '../../src/datapath/sock-lb.js';
import { LxcHarness } from '../helpers/lxc-harness.js';
import { clearLb, writeService } from '../helpers/lb.js';
import { LB_PINS } from '../helpers/lb-pins.js';
import { IPPROTO } from '../helpers/packet.js';

const TAG = `sluice-t-sock-${process.pid}`;
const NODE_NS = `${TAG}-node`;
const POD_NS = `${TAG}-pod`;
const CGROUP_ROOT = '/sys/fs/cgroup/unified';
const CGROUP = join(CGROUP_ROOT, TAG);
const VIP = '10.96.0.10';
const B1 = '10.77.0.2';
const B2 = '10.77.0.3';
const SOCK_LB = fileURLToPath(new URL('../../src/datapath/sock-lb.js', import.meta.url));

let h: LxcHarness | undefined;
const servers: ChildProcess[] = [];

function harness(): LxcHarness {
  assert.ok(h);
  return h;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

/** Runs a client script (its last stdout line is JSON) in a namespace, in the test cgroup or not. */
function client(ns: string, inCgroup: boolean, script: string): Record<string, unknown> {
  // The cgroup is joined before entering the namespace: `ip netns exec` mounts a /sys of its own, without the cgroup tree.
  const join = inCgroup ? `echo $$ > ${CGROUP}/cgroup.procs && ` : '';
  const out = execFileSync('sh', ['-c', `${join}exec ip netns exec ${ns} node --input-type=module -e "$0"`, script], { encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

const TCP_GET = `
import { connect } from 'node:net';
const s = connect({ host: '${VIP}', port: 80 });
s.on('connect', () => { s.once('data', (d) => { console.log(JSON.stringify({ reply: String(d).trim(), peer: s.remoteAddress + ':' + s.remotePort })); s.destroy(); }); });
s.on('error', (e) => console.log(JSON.stringify({ error: e.code })));
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); }, 5000).unref();
`;

const UDP_ASK = (connected: boolean): string => `
import { createSocket } from 'node:dgram';
const s = createSocket('udp4');
const done = (o) => { console.log(JSON.stringify(o)); s.close(); };
s.on('error', (e) => done({ error: e.code }));
s.on('message', (m, r) => done({ reply: String(m).trim(), from: r.address + ':' + r.port${connected ? ", peer: s.remoteAddress().address + ':' + s.remoteAddress().port" : ''} }));
${connected ? `s.connect(53, '${VIP}', () => s.send('hi', (e) => e && done({ error: e.code })));` : `s.send('hi', 53, '${VIP}', (e) => e && done({ error: e.code }));`}
setTimeout(() => { done({ error: 'timeout' }); process.exit(0); }, 5000).unref();
`;

const SERVER = (name: string, addr: string): string => `
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
createServer((c) => c.end('${name}\\n')).listen(8080, '${addr}');
const u = createSocket('udp4');
u.on('message', (m, r) => u.send('${name}', r.port, r.address));
u.bind(5353, '${addr}', () => console.log('ready'));
`;

function startServer(name: string, addr: string): Promise<void> {
  const p = spawn('ip', ['netns', 'exec', NODE_NS, 'node', '--input-type=module', '-e', SERVER(name, addr)], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(p);
  return new Promise((resolve, reject) => {
    p.stdout?.once('data', () => resolve());
    p.once('exit', (code) => reject(new Error(`server ${name} exited ${String(code)}`)));
  });
}

function cookieOf(ns: string): bigint {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'node', '--input-type=module', '-e',
    `import { netnsCookie } from ${JSON.stringify(SOCK_LB)}; console.log(String(netnsCookie()));`], { encoding: 'utf8' });
  return BigInt(out.trim());
}

before(async () => {
  assert.ok(existsSync(join(CGROUP_ROOT, 'cgroup.procs')), `no cgroup v2 at ${CGROUP_ROOT}`);
  try {
    for (const ns of [NODE_NS, POD_NS]) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('-n', NODE_NS, 'addr', 'add', `${B1}/32`, 'dev', 'lo');
    ip('-n', NODE_NS, 'addr', 'add', `${B2}/32`, 'dev', 'lo');
    mkdirSync(CGROUP);
    h = LxcHarness.open({ endpointId: 61, ipv4: parseIpv4('10.0.1.6') }, LB_PINS);
    const object = loadSockLb({ pinRoot: h.pinRoot, hostNetnsCookie: cookieOf(NODE_NS) });
    try {
      attachSockLb(object, CGROUP, h.pinRoot);
    } finally {
      object.close();
    }
    await startServer('b1', B1);
    await startServer('b2', B2);
  } catch (err) {
    cleanup();
    throw err;
  }
});
after(cleanup);
beforeEach(() => clearLb(harness().dp.maps.lb));

function cleanup(): void {
  for (const p of servers) p.kill('SIGKILL');
  if (h !== undefined) detachSockLb(h.pinRoot);
  h?.close();
  h = undefined;
  for (const ns of [NODE_NS, POD_NS]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not created
    }
  }
  // The cgroup empties as its clients exit; rmdir fails while one lingers.
  for (let i = 0; i < 50 && existsSync(CGROUP); i++) {
    try {
      rmdirSync(CGROUP);
    } catch {
      execFileSync('sleep', ['0.1']);
    }
  }
}

const TCP_SVC = { vip: VIP, port: 80, protocol: IPPROTO.TCP, serviceId: 1, backends: [{ id: 1, ip: B1, port: 8080 }, { id: 2, ip: B2, port: 8080 }] };
const UDP_SVC = { vip: VIP, port: 53, protocol: IPPROTO.UDP, serviceId: 2, backends: [{ id: 3, ip: B1, port: 5353 }, { id: 4, ip: B2, port: 5353 }] };

test('every hook is attached by a pinned link on the cgroup', () => {
  const links = sockLbAttached(harness().pinRoot);
  assert.deepEqual(links.map((l) => l.hook), [...SOCK_HOOKS]);
  for (const l of links) assert.equal(l.cgroupId, cgroupIdOf(CGROUP));
});

test('a node socket connecting to a frontend reaches a backend, and its peer is the frontend', () => {
  writeService(harness().dp.maps.lb, TCP_SVC);
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = client(NODE_NS, true, TCP_GET);
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.peer, `${VIP}:80`);
    seen.add(String(r.reply));
  }
  assert.deepEqual([...seen].sort(), ['b1', 'b2'], 'both backends get connections');
});

test('UDP, connected and not: the answer comes from the frontend', () => {
  writeService(harness().dp.maps.lb, UDP_SVC);
  const connected = client(NODE_NS, true, UDP_ASK(true));
  assert.equal(connected.error, undefined, JSON.stringify(connected));
  assert.match(String(connected.reply), /^b[12]$/);
  assert.deepEqual([connected.from, connected.peer], [`${VIP}:53`, `${VIP}:53`]);
  const unconnected = client(NODE_NS, true, UDP_ASK(false));
  assert.equal(unconnected.error, undefined, JSON.stringify(unconnected));
  assert.equal(unconnected.from, `${VIP}:53`);
});

test('a frontend without backends refuses at once (ECONNREFUSED); one that drops: EHOSTUNREACH', () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, { ...TCP_SVC, backends: [] });
  assert.deepEqual(client(NODE_NS, true, TCP_GET), { error: 'ECONNREFUSED' });
  writeService(lb, { ...TCP_SVC, backends: [], emptyDrop: true });
  assert.deepEqual(client(NODE_NS, true, TCP_GET), { error: 'EHOSTUNREACH' });
});

test('sockets of another namespace (a pod\'s), or outside the cgroup, are left alone', () => {
  writeService(harness().dp.maps.lb, TCP_SVC);
  assert.deepEqual(client(POD_NS, true, TCP_GET), { error: 'ENETUNREACH' });
  assert.deepEqual(client(NODE_NS, false, TCP_GET), { error: 'ENETUNREACH' });
});

/** A connected UDP client that stays: it asks once, and again on every line its stdin gets; its stdout is JSON lines. */
const UDP_STAY = (vip: string): string => `
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
const s = createSocket('udp4');
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
s.on('message', (m) => console.log(JSON.stringify({ reply: String(m).trim() })));
s.connect(53, '${vip}', () => s.send('hi'));
createInterface({ input: process.stdin }).on('line', () => s.send('hi', (e) => e && console.log(JSON.stringify({ error: e.code }))));
`;

interface StayingClient {
  next(): Promise<Record<string, unknown>>;
  ask(): void;
  stop(): void;
}

function stayingClient(vip: string): StayingClient {
  const p = spawn('sh', ['-c', `echo $$ > ${CGROUP}/cgroup.procs && exec ip netns exec ${NODE_NS} node --input-type=module -e "$0"`, UDP_STAY(vip)],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: p.stdout }).on('line', (l) => {
    const w = waiting.shift();
    if (w !== undefined) w(l);
    else lines.push(l);
  });
  return {
    next: () => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer from the client in 5 s')), 5000);
      const take = (l: string): void => {
        clearTimeout(t);
        resolve(JSON.parse(l) as Record<string, unknown>);
      };
      const l = lines.shift();
      if (l !== undefined) take(l);
      else waiting.push(take);
    }),
    ask: () => p.stdin.write('\n'),
    stop: () => p.kill('SIGKILL'),
  };
}

/**
 * HostUdpSockets.terminate in the node's namespace (SOCK_DESTROY acts on the caller's): the sockets it closed.
 * nsenter, not `ip netns exec`, which mounts a /sys of its own, without the bpffs the map is pinned in.
 */
function terminateInNode(gone: readonly { addr: string; port: number; frontends: readonly (readonly [string, number])[] }[]): number {
  const arg = gone.map((g) => ({ addr: parseIpv4(g.addr), port: g.port, frontends: g.frontends.map(([a, p]) => frontendRef(parseIpv4(a), p)) }));
  const script = `import { HostUdpSockets } from ${JSON.stringify(SOCK_LB)};
const gone = ${JSON.stringify(arg)}.map((g) => ({ ...g, frontends: new Set(g.frontends) }));
const sockets = new HostUdpSockets(${JSON.stringify(harness().pinRoot)});
console.log(String(sockets.terminate(gone)));
sockets.close();`;
  return Number(execFileSync('nsenter', [`--net=/run/netns/${NODE_NS}`, 'node', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim());
}

test('a connected UDP socket whose backend left the Service is closed (ECONNABORTED); one given the same backend through another Service stays', async () => {
  const lb = harness().dp.maps.lb;
  const VIP2 = '10.96.0.11';
  writeService(lb, { ...UDP_SVC, backends: [{ id: 3, ip: B1, port: 5353 }] });
  writeService(lb, { ...UDP_SVC, vip: VIP2, serviceId: 3, backends: [{ id: 5, ip: B1, port: 5353 }] });
  const gone = stayingClient(VIP);
  const other = stayingClient(VIP2);
  try {
    assert.deepEqual(await gone.next(), { reply: 'b1' });
    assert.deepEqual(await other.next(), { reply: 'b1' });
    // B1 leaves the first Service only.
    assert.equal(terminateInNode([{ addr: B1, port: 5353, frontends: [[VIP, 53]] }]), 1);
    assert.deepEqual(await gone.next(), { error: 'ECONNABORTED' });
    other.ask();
    assert.deepEqual(await other.next(), { reply: 'b1' }, 'the other Service\'s socket keeps its backend');
    assert.equal(terminateInNode([{ addr: B1, port: 5353, frontends: [[VIP, 53]] }]), 0, 'its entry went with it');
  } finally {
    gone.stop();
    other.stop();
  }
  // A new socket to the first frontend gets a backend of the Service as it is now.
  writeService(lb, { ...UDP_SVC, backends: [{ id: 4, ip: B2, port: 5353 }] });
  lb.backends.delete(3);
  assert.equal(client(NODE_NS, true, UDP_ASK(true)).reply, 'b2');
});

test('attaching again swaps the programs in place; detaching removes them', () => {
  const pinRoot = harness().pinRoot;
  const before = sockLbAttached(pinRoot);
  const object = loadSockLb({ pinRoot, hostNetnsCookie: cookieOf(NODE_NS) });
  try {
    const again = attachSockLb(object, CGROUP, pinRoot);
    assert.equal(again.length, SOCK_HOOKS.length);
    for (const [i, l] of again.entries()) assert.notEqual(l.progId, before[i]?.progId, `${l.hook}: a new program`);
  } finally {
    object.close();
  }
  writeService(harness().dp.maps.lb, TCP_SVC);
  assert.match(String(client(NODE_NS, true, TCP_GET).reply), /^b[12]$/, 'still translating after the swap');
  assert.deepEqual(detachSockLb(pinRoot), [...SOCK_HOOKS]);
  assert.deepEqual(sockLbAttached(pinRoot), []);
  assert.deepEqual(client(NODE_NS, true, TCP_GET), { error: 'ENETUNREACH' });
  const object2 = loadSockLb({ pinRoot, hostNetnsCookie: cookieOf(NODE_NS) });
  try {
    attachSockLb(object2, CGROUP, pinRoot);
  } finally {
    object2.close();
  }
});
