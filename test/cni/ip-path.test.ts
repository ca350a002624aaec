/**
 * The `ip -batch` path of ADD, CHECK, GC and DEL (SLUICE_CNI_NETLINK=0), kept
 * for comparison and as a way out should the addon's rtnetlink path
 * misbehave: it must still build, check and remove the same attachment, and
 * CHECK must find the same faults either way. An `ip` wrapper first on PATH
 * records every invocation, so the test knows which path ran (the agent runs
 * in the root netns, so every invocation falls back to the Node plugin,
 * which sees our PATH).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniNode, podArgs, type CallArgs, type PluginRun } from './helpers/harness.js';

/** Lines the wrapper logged, one per `ip` run ("-batch -" and its flags). */
function ipRuns(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : [];
}

function podAddresses(netns: string): string[] {
  const r = spawnSync('nsenter', [`--net=${netns}`, 'ip', '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const links = JSON.parse(r.stdout) as { addr_info?: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${String(a.prefixlen)}`));
}

test('SLUICE_CNI_NETLINK=0: ADD, CHECK, GC and DEL through ip -batch build, check and remove the same attachment; the default runs no ip for any of them', async () => {
  const node = new CniNode('10.244.26.0/24');
  try {
    await node.setUp({ agent: true }); // agent in the root netns: the shim hands over to the Node plugin, which sees our env
    const bin = join(node.dir, 'ip-wrapper');
    const log = join(node.dir, 'ip.log');
    mkdirSync(bin, { recursive: true });
    const ipPath = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(bin, 'ip'), `#!/bin/sh\necho "$*" >> ${log}\nexec ${ipPath} "$@"\n`);
    chmodSync(join(bin, 'ip'), 0o755);
    const PATH = `${bin}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;
    const viaIp = { PATH, SLUICE_CNI_NETLINK: '0' };
    /** Runs one invocation; returns it with the number of `ip` runs it made. */
    const run = async (c: CallArgs, conf: unknown): Promise<PluginRun & { ipRuns: number }> => {
      const before = ipRuns(log).length;
      const r = await node.call(c, conf);
      return { ...r, ipRuns: ipRuns(log).length - before };
    };
    const gcKeeping = (...ids: string[]): Record<string, unknown> => ({ ...node.conf(), 'cni.dev/valid-attachments': ids.map((id) => ({ containerID: id, ifname: 'eth0' })) });

    const netns = node.addPodNetns('viaip');
    const call = { containerId: 'ctr-ip', netns, ifname: 'eth0', args: podArgs('viaip') };
    const add = await node.call({ ...call, command: 'ADD', env: viaIp }, node.conf());
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    const addRuns = ipRuns(log);
    assert.ok(addRuns.filter((l) => l.includes('-batch')).length >= 2, `ADD ran ip -batch for the host and the pod side: ${JSON.stringify(addRuns)}`);
    const ip = (add.json?.['ips'] as { address: string }[] | undefined)?.[0]?.address;
    assert.ok(ip !== undefined && ip.startsWith('10.244.26.'), add.stdout);
    assert.deepEqual(podAddresses(netns), [ip], 'the pod has exactly its address');
    const check = await run({ ...call, command: 'CHECK', env: viaIp }, node.conf({ prevResult: add.json }));
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
    assert.ok(check.ipRuns >= 2, `CHECK ran ip for the host veth and the pod end (${check.ipRuns})`);
    const gc = await run({ command: 'GC', env: viaIp }, gcKeeping('ctr-ip'));
    assert.equal(gc.exitCode, 0, gc.stdout + gc.stderr);
    assert.ok(gc.ipRuns >= 1, 'GC listed the host links with ip');
    assert.equal(node.allocations().size, 1, 'GC kept the valid attachment');

    const del = await run({ ...call, command: 'DEL', env: viaIp }, node.conf());
    assert.equal(del.exitCode, 0, del.stdout + del.stderr);
    assert.ok(del.ipRuns > 0, 'DEL ran ip');
    assert.deepEqual(podAddresses(netns), [], 'the pod end went with the host veth');
    assert.equal(node.allocations().size, 0);

    // The default (netlink) path, same wrapper on PATH: ADD, CHECK and GC start no ip at all.
    writeFileSync(log, '');
    const netns2 = node.addPodNetns('vianl');
    const call2 = { containerId: 'ctr-nl', netns: netns2, ifname: 'eth0', args: podArgs('vianl') };
    const add2 = await node.call({ ...call2, command: 'ADD', env: { PATH } }, node.conf());
    assert.equal(add2.exitCode, 0, add2.stdout + add2.stderr);
    assert.deepEqual(ipRuns(log), [], 'the netlink ADD ran no ip');
    assert.equal(podAddresses(netns2).length, 1);
    const check2 = await run({ ...call2, command: 'CHECK', env: { PATH } }, node.conf({ prevResult: add2.json }));
    assert.equal(check2.exitCode, 0, check2.stdout + check2.stderr);
    assert.equal(check2.ipRuns, 0, 'the netlink CHECK ran no ip');
    const check2ViaIp = await run({ ...call2, command: 'CHECK', env: viaIp }, node.conf({ prevResult: add2.json }));
    assert.equal(check2ViaIp.exitCode, 0, 'the ip CHECK passes the netlink ADD\'s attachment too');
    const gc2 = await run({ command: 'GC', env: { PATH } }, gcKeeping('ctr-nl'));
    assert.equal(gc2.exitCode, 0, gc2.stdout + gc2.stderr);
    assert.equal(gc2.ipRuns, 0, 'the netlink GC ran no ip');
    assert.equal(node.allocations().size, 1, 'GC kept the valid attachment');

    // Broken pod end: both paths fail CHECK with 103 and name the same faults.
    const podNs = netns2.split('/').pop() ?? '';
    spawnSync('ip', ['-n', podNs, 'addr', 'flush', 'dev', 'eth0']);
    spawnSync('ip', ['-n', podNs, 'link', 'set', 'eth0', 'mtu', '1300']);
    const broken = await run({ ...call2, command: 'CHECK', env: { PATH } }, node.conf({ prevResult: add2.json }));
    const brokenViaIp = await run({ ...call2, command: 'CHECK', env: viaIp }, node.conf({ prevResult: add2.json }));
    assert.equal(broken.json?.['code'], 103, broken.stdout + broken.stderr);
    assert.equal(broken.ipRuns, 0);
    assert.match(String(broken.json?.['msg']), /MTU 1300, want 1500/);
    assert.match(String(broken.json?.['msg']), /lacks address 10\.244\.26\.\d+\/32/);
    assert.match(String(broken.json?.['msg']), /no default route via 169\.254\.1\.1/);
    assert.deepEqual(brokenViaIp.json, broken.json, 'the ip path names the same faults');
    assert.ok(brokenViaIp.ipRuns >= 2);

    // GC of everything through netlink: the attachment goes, still no ip.
    const gcAll = await run({ command: 'GC', env: { PATH } }, gcKeeping());
    assert.equal(gcAll.exitCode, 0, gcAll.stdout + gcAll.stderr);
    assert.equal(gcAll.ipRuns, 0, 'the netlink GC ran no ip');
    assert.equal(node.allocations().size, 0);
    assert.deepEqual(node.hostVeths(), []);
  } finally {
    await node.tearDown();
  }
});
