/**
 * ADD, CHECK, GC and DEL start no `ip` and no `nsenter`: the plugin's links
 * are rtnetlink requests from the addon. Wrappers first on PATH log every
 * run of either; the agent runs in the root netns, so every invocation falls
 * back to the Node plugin, which sees our PATH (the plugin the agent runs
 * in-process is the same code). A failing CHECK, which reads the most, runs
 * none either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniNode, podArgs, type CallArgs, type PluginRun } from './helpers/harness.js';

function podAddresses(netns: string): string[] {
  const r = spawnSync('nsenter', [`--net=${netns}`, 'ip', '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const links = JSON.parse(r.stdout) as { addr_info?: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${String(a.prefixlen)}`));
}

test('ADD, CHECK (passing and failing), GC and DEL run no ip and no nsenter', async () => {
  const node = new CniNode('10.244.26.0/24');
  try {
    await node.setUp({ agent: true }); // agent in the root netns: the shim hands over to the Node plugin, which sees our env
    const bin = join(node.dir, 'wrappers');
    const log = join(node.dir, 'runs.log');
    mkdirSync(bin, { recursive: true });
    for (const tool of ['ip', 'nsenter']) {
      const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      assert.notEqual(real, '', `${tool} is installed (the wrapper needs the real one)`);
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> ${log}\nexec ${real} "$@"\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const env = { PATH: `${bin}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
    const runs = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : []);
    // The wrappers log: a run of the real tool through one shows up (the check below can fail).
    spawnSync(join(bin, 'ip'), ['-V'], { env });
    assert.equal(runs().length, 1, 'the wrapper logged its own run');
    writeFileSync(log, '');

    // The harness itself starts the plugin through nsenter (into the node netns), with the same PATH.
    const harnessRun = `nsenter --net=${node.netnsPath(node.nodeNs)} ${join(node.binDir, 'sluice-cni')}`;
    /** Runs one invocation with the wrappers first on PATH; returns it with the tool runs it made. */
    const run = async (c: CallArgs, conf: unknown): Promise<PluginRun & { runs: string[] }> => {
      const before = runs().length;
      const r = await node.call({ ...c, env }, conf);
      const made = runs().slice(before);
      assert.equal(made.filter((l) => l === harnessRun).length, 1, `the harness's own start of the plugin went through the wrapper: ${JSON.stringify(made)}`);
      return { ...r, runs: made.filter((l) => l !== harnessRun) };
    };
    const gcKeeping = (...ids: string[]): Record<string, unknown> => ({ ...node.conf(), 'cni.dev/valid-attachments': ids.map((id) => ({ containerID: id, ifname: 'eth0' })) });

    const netns = node.addPodNetns('noip');
    const call = { containerId: 'ctr-noip', netns, ifname: 'eth0', args: podArgs('noip') };
    const add = await run({ ...call, command: 'ADD' }, node.conf());
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    assert.deepEqual(add.runs, [], 'ADD ran no ip or nsenter');
    const ip = (add.json?.['ips'] as { address: string }[] | undefined)?.[0]?.address;
    assert.ok(ip !== undefined && ip.startsWith('10.244.26.'), add.stdout);
    assert.deepEqual(podAddresses(netns), [ip], 'the pod has exactly its address');

    const check = await run({ ...call, command: 'CHECK' }, node.conf({ prevResult: add.json }));
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
    assert.deepEqual(check.runs, [], 'CHECK ran no ip or nsenter');

    const gc = await run({ command: 'GC' }, gcKeeping('ctr-noip'));
    assert.equal(gc.exitCode, 0, gc.stdout + gc.stderr);
    assert.deepEqual(gc.runs, [], 'GC ran no ip or nsenter');
    assert.equal(node.allocations().size, 1, 'GC kept the valid attachment');

    // Broken pod end: CHECK reads the pod's link, addresses and routes, names every fault, still through netlink.
    const podNs = netns.split('/').pop() ?? '';
    spawnSync('ip', ['-n', podNs, 'addr', 'flush', 'dev', 'eth0']);
    spawnSync('ip', ['-n', podNs, 'link', 'set', 'eth0', 'mtu', '1300']);
    const broken = await run({ ...call, command: 'CHECK' }, node.conf({ prevResult: add.json }));
    assert.equal(broken.json?.['code'], 103, broken.stdout + broken.stderr);
    assert.match(String(broken.json?.['msg']), /MTU 1300, want 1500/);
    assert.match(String(broken.json?.['msg']), /lacks address 10\.244\.26\.\d+\/32/);
    assert.match(String(broken.json?.['msg']), /no default route via 169\.254\.1\.1/);
    assert.deepEqual(broken.runs, [], 'the failing CHECK ran no ip or nsenter');

    const del = await run({ ...call, command: 'DEL' }, node.conf());
    assert.equal(del.exitCode, 0, del.stdout + del.stderr);
    assert.deepEqual(del.runs, [], 'DEL ran no ip or nsenter');
    assert.deepEqual(podAddresses(netns), [], 'the pod end went with the host veth');
    assert.equal(node.allocations().size, 0);

    // GC of a second attachment that is not on the valid list: removed, still no tool run.
    const netns2 = node.addPodNetns('noip2');
    const add2 = await run({ containerId: 'ctr-noip2', netns: netns2, ifname: 'eth0', args: podArgs('noip2'), command: 'ADD' }, node.conf());
    assert.equal(add2.exitCode, 0, add2.stdout + add2.stderr);
    const gcAll = await run({ command: 'GC' }, gcKeeping());
    assert.equal(gcAll.exitCode, 0, gcAll.stdout + gcAll.stderr);
    assert.deepEqual(gcAll.runs, [], 'the removing GC ran no ip or nsenter');
    assert.equal(node.allocations().size, 0);
    assert.deepEqual(node.hostVeths(), []);
  } finally {
    await node.tearDown();
  }
});
