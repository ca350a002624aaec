/**
 * The addon's rtnetlink reads for CHECK and GC (native/src/rtnl.cc
 * rtnlPodView, rtnlLinkList, rtnlLinkListSync) against `ip -j -d` output as
 * the oracle, on the same namespaces: same answers. The pod end has
 * several addresses (a secondary, an IPv6 one) and routes that `ip route
 * show dev X` must not list (another table, multipath, blackhole, IPv6,
 * another device) beside the ones it does; the node netns has enough links
 * for a dump of several parts. A child in the node netns (`ip netns exec`)
 * does the reading; nothing touches the root namespace. Namespaces are
 * sluice-rr-<id>-*, so scripts/test's leak check would see one left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh } from './helpers/harness.js';

const READ = join(dirname(fileURLToPath(import.meta.url)), 'helpers/rtnl-read.js');
const PAIRS = 60; // veth pairs in the node netns besides the host veth (this kernel has no dummy driver)

interface Settled {
  readonly ok: boolean;
  readonly value?: unknown;
  readonly errno?: number;
  readonly detail?: string;
}

interface Pair {
  readonly what: string;
  readonly ip: Settled;
  readonly netlink: Settled;
}

interface View {
  readonly exists: boolean;
  readonly addresses: string[];
  readonly routes: { dst: string; gateway?: string }[];
  readonly kind?: string;
  readonly up?: boolean;
}

const ip = (...args: string[]): string => sh('ip', args);
const ipBatch = (netns: string, lines: readonly string[]): string => sh('ip', ['-n', netns, '-batch', '-'], `${lines.join('\n')}\n`);

test('CHECK\'s pod view and GC\'s link listing through netlink equal what ip -j shows, link by link and address by address', () => {
  const id = randomBytes(3).toString('hex');
  const nodeNs = `sluice-rr-${id}-node`;
  const podNs = `sluice-rr-${id}-pod`;
  const host = `slnc${id}h`;
  try {
    ip('netns', 'add', nodeNs);
    ip('netns', 'add', podNs);
    ip('-n', nodeNs, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', podNs);
    ip('-n', nodeNs, 'link', 'set', host, 'alias', 'sluice test "quoted" alias', 'up');
    // Enough links that the dump spans several datagrams (~6 of 32 KB); some with aliases.
    ipBatch(nodeNs, Array.from({ length: PAIRS }, (_, i) => [
      `link add slnc${id}a${i} type veth peer name slnc${id}b${i}`, ...(i % 3 === 0 ? [`link set slnc${id}a${i} alias slnc-extra-${i}`] : []),
    ]).flat());
    ipBatch(podNs, [
      'link set lo up',
      'link set eth0 addrgenmode none mtu 1400 up',
      'addr add 10.80.0.7/32 dev eth0',
      'addr add 10.80.1.7/24 dev eth0',
      'addr add 10.80.1.8/24 dev eth0', // secondary
      'addr add fd00::7/64 dev eth0 nodad',
      'link add side0 type veth peer name side0p',
      'link set side0 up',
      'addr add 10.95.0.1/30 dev side0',
      'link add ifb0 type ifb', // stays down
      'route add 169.254.1.1 dev eth0 scope link',
      'route add default via 169.254.1.1 dev eth0',
      'route add 10.94.0.1 via 169.254.1.1 dev eth0', // a host route with a gateway
      'route add 10.90.0.0/16 via 169.254.1.1 dev eth0 table 100',
      'route add blackhole 10.91.0.0/16',
      'route add 10.92.0.0/16 nexthop via 169.254.1.1 dev eth0 nexthop via 10.80.1.1 dev eth0',
      'route add 10.93.0.0/16 dev side0',
      'route add fd00:1::/64 via fd00::1 dev eth0',
    ]);

    const ifnames = ['eth0', 'side0', 'ifb0', 'lo', 'missing0'];
    const r = spawnSync('ip', ['netns', 'exec', nodeNs, process.execPath, READ, `/run/netns/${podNs}`, `/run/netns/sluice-rr-${id}-gone`, ...ifnames],
      { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const pairs = JSON.parse(r.stdout) as Pair[];
    const pair = (what: string): Pair => {
      const x = pairs.find((q) => q.what === what);
      assert.ok(x !== undefined, what);
      return x;
    };

    for (const x of pairs) {
      if (x.what.includes('missing netns')) continue;
      assert.ok(x.ip.ok, `${x.what}, ip -j: ${x.ip.detail ?? ''}`);
      assert.ok(x.netlink.ok, `${x.what}, netlink: ${x.netlink.detail ?? ''}`);
      assert.deepEqual(x.netlink.value, x.ip.value, x.what);
    }

    // What the pairs agree on is what CHECK and GC need.
    const eth0 = pair('pod view of eth0').netlink.value as View;
    assert.deepEqual(eth0.addresses, ['10.80.0.7/32', '10.80.1.7/24', '10.80.1.8/24', 'fd00::7/64']);
    assert.deepEqual(eth0.routes, [
      { dst: 'default', gateway: '169.254.1.1' },
      { dst: '10.80.1.0/24' },
      { dst: '10.94.0.1', gateway: '169.254.1.1' },
      { dst: '169.254.1.1' },
    ], 'IPv4, main table, through eth0 itself; a /32 without its length');
    assert.equal(eth0.kind, 'veth');
    const ifb0 = pair('pod view of ifb0').netlink.value as View;
    assert.equal(ifb0.up, false);
    assert.equal(ifb0.kind, 'ifb');
    assert.equal((pair('pod view of lo').netlink.value as View).kind, '', 'no link kind: "", as for a link ip -j shows without one');
    assert.deepEqual(pair('pod view of missing0').netlink.value, { exists: false, addresses: [], routes: [] });
    const links = pair('links of our netns').netlink.value as { ifname: string; alias?: string }[];
    assert.equal(links.length, 1 + 1 + 2 * PAIRS, 'lo, the host veth and every extra pair');
    assert.equal(links.find((l) => l.ifname === host)?.alias, 'sluice test "quoted" alias');
    assert.equal((pair('the addon\'s link dump, every field').netlink.value as unknown[]).length, 2 + 2 * PAIRS);

    for (const what of ['pod view in a missing netns', 'links of a missing netns', 'links of a missing netns, sync']) {
      const x = pair(what);
      assert.equal(x.ip.ok, false, `${what}: ip -j fails too`);
      assert.equal(x.netlink.ok, false, `${what}: netlink fails, never an empty answer`);
      assert.equal(x.netlink.errno, 2, `${what}: ENOENT: ${JSON.stringify(x.netlink)}`);
      assert.match(x.netlink.detail ?? '', new RegExp(`sluice-rr-${id}-gone`));
    }
  } finally {
    spawnSync('ip', ['netns', 'delete', nodeNs]);
    spawnSync('ip', ['netns', 'delete', podNs]);
  }
});
