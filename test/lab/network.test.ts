/**
 * The lab's plumbing on a real kernel, without the datapath: namespaces,
 * veths, addresses, routes; rollback and idempotent teardown.
 */
import assert from 'node:assert/strict';
import { unlink } from 'node:fs/promises';
import { after, test } from 'node:test';
import { type Runner, execRunner } from '../../src/lab/command.js';
import { LabError } from '../../src/lab/errors.js';
import { Lab } from '../../src/lab/lab.js';
import { NetnsOps } from '../../src/lab/netns.js';
import { statePathFor } from '../../src/lab/names.js';
import { iperf, labLeftovers, labPaths, ping, sh, uniqueLabName } from './helpers.js';

const used: string[] = [];
function name(): string {
  const n = uniqueLabName();
  used.push(n);
  return n;
}
const lab = new Lab({ runner: execRunner, paths: labPaths });

after(async () => {
  for (const n of used) await lab.down(n);
  for (const n of used) assert.deepEqual(await labLeftovers(n), [], `lab ${n} left objects behind`);
});

test('up: pods reach each other (ICMP, TCP); down leaves nothing behind and is idempotent', async (t) => {
  const n = name();
  try {
    const state = await lab.up({ name: n, pods: ['a', 'b'], datapath: false });
    const [a, b] = state.plan.pods;
    assert.ok(a && b);
    const netns = new NetnsOps(execRunner);

    // Plumbing as designed: /32 + link-local gateway in the pod, forwarding
    // and a /32 route per pod in the node, no IPv6 anywhere.
    assert.match(await netns.ip(a.netns, ['-4', 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet ${a.ipv4}/32 `));
    assert.equal(
      (await netns.ip(a.netns, ['route', 'show'])).trim(),
      'default via 169.254.1.1 dev eth0 \n169.254.1.1 dev eth0 scope link',
    );
    assert.match(await netns.ip(state.plan.nodeNetns, ['route', 'show']), new RegExp(`${b.ipv4} dev ${b.hostIfname} scope link`));
    assert.equal(await netns.readSysctl(state.plan.nodeNetns, 'net.ipv4.ip_forward'), '1');
    assert.equal(await netns.readSysctl(a.netns, 'net.ipv6.conf.eth0.disable_ipv6'), '1');
    assert.equal((await netns.ip(a.netns, ['-6', 'addr', 'show'])).trim(), '');
    const lo = (await netns.links(a.netns)).find((l) => l.ifname === 'lo');
    assert.equal(lo?.up, true);

    const p = await ping(a.netns, b.ipv4);
    assert.equal(p.received, 3, 'a -> b ping');
    assert.equal((await ping(b.netns, a.ipv4)).received, 3, 'b -> a ping');
    t.diagnostic(`baseline (no datapath) ping a->b avg RTT ${p.avgMs} ms`);
    const tcp = await iperf(b.netns, b.ipv4, a.netns, { seconds: 1, port: 5201 });
    assert.ok(tcp.ok, `iperf3 a -> b: ${tcp.error}`);
    assert.ok(tcp.bytesReceived > 1_000_000, `only ${tcp.bytesReceived} bytes`);
    t.diagnostic(`baseline TCP a->b ${(tcp.bytesReceived * 8) / 1e9} Gbit in 1 s`);

    const status = await lab.status(n);
    assert.equal(status.healthy, true);
    assert.deepEqual(
      status.pods.map((s) => [s.pod.name, s.netnsPresent, s.hostLinkUp]),
      [
        ['a', true, true],
        ['b', true, true],
      ],
    );
    // exec runs in the pod: its eth0 has the pod's address.
    const argv = await lab.execArgv(n, 'b', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.deepEqual(argv.slice(0, 4), ['ip', 'netns', 'exec', b.netns]);
    const shown = await sh(argv[0] ?? '', argv.slice(1));
    assert.match(shown.stdout, new RegExp(`inet ${b.ipv4}/32`));
  } finally {
    const report = await lab.down(n);
    assert.equal(report.netns.length, 3);
  }
  assert.deepEqual(await labLeftovers(n), []);
  const again = await lab.down(n);
  assert.deepEqual([again.netns, again.pinRoot, again.stateFile], [[], undefined, undefined]);
});

test('a failure half-way (invalid address for pod b) rolls back everything', async () => {
  const n = name();
  // The real `ip` rejects the address: pod a and the node exist by then.
  const faulty: Runner = (file, args) =>
    execRunner(
      file,
      args.map((a) => (/^10\.\d+\.0\.3\/32$/.test(a) ? '10.0.0.300/32' : a)),
    );
  const faultyLab = new Lab({ runner: faulty, paths: labPaths });
  await assert.rejects(faultyLab.up({ name: n, pods: ['a', 'b', 'c'], datapath: false }), (e: unknown) => {
    assert.ok(e instanceof LabError);
    assert.equal(e.code, 'setup-failed');
    assert.equal(e.field, 'pod "b"');
    assert.match(e.message, /creating pod "b" failed: ip -n sluice-t\w+-b addr add 10\.0\.0\.300\/32 dev eth0: .*; rolled back/);
    return true;
  });
  assert.deepEqual(await labLeftovers(n), []);
});

test('up refuses a name in use and leaves that lab intact; down works without a state file', async () => {
  const n = name();
  try {
    await lab.up({ name: n, pods: ['a'], datapath: false });
    await assert.rejects(lab.up({ name: n, pods: ['x'], datapath: false }), (e: unknown) => {
      assert.ok(e instanceof LabError);
      assert.equal(e.code, 'exists');
      assert.equal(e.field, 'name');
      assert.match(e.message, new RegExp(`lab "${n}" exists already \\(netns sluice-${n}-`));
      return true;
    });
    assert.equal((await lab.status(n)).healthy, true);
    await assert.rejects(lab.execArgv(n, 'c', ['true']), /unknown pod "c" in lab "t\w+" \(pods: "a"\)/);

    // A crash may leave namespaces but no state file: down still finds them.
    await unlink(statePathFor(labPaths, n));
    await assert.rejects(lab.status(n), (e: unknown) => e instanceof LabError && e.code === 'not-found');
    const report = await lab.down(n);
    assert.deepEqual([...report.netns].sort(), [`sluice-${n}-a`, `sluice-${n}-node`]);
    assert.deepEqual(await labLeftovers(n), []);
  } finally {
    await lab.down(n);
  }
});

test('two concurrent ups of one name: one wins, the loser rolls back nothing of the winner', async () => {
  const n = name();
  try {
    const results = await Promise.allSettled([
      lab.up({ name: n, pods: ['a', 'b'], datapath: false }),
      lab.up({ name: n, pods: ['a', 'b'], datapath: false }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(lost?.reason instanceof LabError);
    assert.equal(lost.reason.code, 'exists');
    assert.equal((await lab.status(n)).healthy, true, 'the winner is intact');
  } finally {
    await lab.down(n);
  }
});
