/**
 * Child of test/cni/rtnl-read.test.ts, run inside the test's node netns
 * (`ip netns exec`): every read CHECK and GC make, once through the addon's
 * rtnetlink dumps (the code under test) and once from `ip -j -d` output (the
 * oracle), as one JSON line on stdout for the test to compare.
 *
 *   node rtnl-read.js <pod netns path> <missing netns path> <ifname>...
 */
import { spawnSync } from 'node:child_process';
import { listHostLinks, listHostLinksSync } from '../../../src/cni/host-links.js';
import { RtnlError, type LinkSummary, type PodView } from '../../../src/cni/rtnl.js';
import { inspectPod } from '../../../src/cni/wiring.js';
import { addon } from '../../../src/datapath/addon.js';

interface Settled {
  readonly ok: boolean;
  readonly value?: unknown;
  readonly errno?: number;
  readonly detail?: string;
}

async function settle<T>(f: () => T | Promise<T>): Promise<Settled> {
  try {
    return { ok: true, value: await f() };
  } catch (e) {
    return e instanceof RtnlError ? { ok: false, errno: e.errno, detail: e.detail } : { ok: false, detail: String(e) };
  }
}

/** One read both ways. */
interface Pair {
  readonly what: string;
  readonly ip: Settled;
  readonly netlink: Settled;
}

/** `ip -j -d ARGS`, inside netns (a path) when given; throws with ip's message on failure. */
function ipJson(args: readonly string[], netns?: string): Record<string, unknown>[] {
  const argv = [...(netns !== undefined ? ['nsenter', `--net=${netns}`] : []), 'ip', '-j', '-d', ...args];
  const r = spawnSync(argv[0] ?? 'ip', argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Record<string, unknown>[];
}

/** The oracle's link listing. */
function linksByIp(netns?: string): LinkSummary[] {
  return ipJson(['link', 'show'], netns).map((l) => ({
    ifindex: l['ifindex'] as number, ifname: l['ifname'] as string, alias: typeof l['ifalias'] === 'string' ? l['ifalias'] : undefined,
  }));
}

/** The oracle's pod view: `ip addr show dev` and `ip route show dev` (IPv4, main table) in netns. */
function podViewByIp(netns: string, ifname: string): PodView {
  let link: Record<string, unknown>;
  try {
    link = ipJson(['addr', 'show', 'dev', ifname], netns)[0] ?? {};
  } catch (e) {
    if (/does not exist/.test(String(e))) return { exists: false, addresses: [], routes: [] };
    throw e;
  }
  const addrInfo = Array.isArray(link['addr_info']) ? (link['addr_info'] as Record<string, unknown>[]) : [];
  return {
    exists: true,
    mac: String(link['address']),
    mtu: Number(link['mtu']),
    up: Array.isArray(link['flags']) && (link['flags'] as unknown[]).includes('UP'),
    kind: (link['linkinfo'] as { info_kind?: string } | undefined)?.info_kind ?? '',
    addresses: addrInfo.map((a) => `${String(a['local'])}/${String(a['prefixlen'])}`),
    routes: ipJson(['route', 'show', 'dev', ifname], netns).map((r) => ({
      dst: String(r['dst']),
      ...(typeof r['gateway'] === 'string' ? { gateway: r['gateway'] } : {}),
    })),
  };
}

const [podNetns, missingNetns, ...ifnames] = process.argv.slice(2);
if (podNetns === undefined || missingNetns === undefined) throw new Error('usage: rtnl-read <pod netns> <missing netns> <ifname>...');
const pairs: Pair[] = [];
const both = async (what: string, viaIp: () => unknown, viaNetlink: () => unknown): Promise<void> => {
  pairs.push({ what, ip: await settle(viaIp), netlink: await settle(viaNetlink) });
};

for (const ifname of ifnames) await both(`pod view of ${ifname}`, () => podViewByIp(podNetns, ifname), () => inspectPod(podNetns, ifname));
await both('pod view in a missing netns', () => podViewByIp(missingNetns, 'eth0'), () => inspectPod(missingNetns, 'eth0'));
await both('links of our netns', () => linksByIp(), () => listHostLinks());
await both('links of the pod netns', () => linksByIp(podNetns), () => listHostLinks(podNetns));
await both('links of a missing netns', () => linksByIp(missingNetns), () => listHostLinks(missingNetns));
await both('links of our netns, sync', () => linksByIp(), () => listHostLinksSync(addon()));
await both('links of the pod netns, sync', () => linksByIp(podNetns), () => listHostLinksSync(addon(), podNetns));
await both('links of a missing netns, sync', () => linksByIp(missingNetns), () => listHostLinksSync(addon(), missingNetns));

// The addon's link dump field by field against `ip -j -d link show` (more than LinkSummary carries).
const fromIp = ipJson(['link', 'show']).map((l) => ({
  ifindex: l['ifindex'], name: l['ifname'], up: (l['flags'] as string[]).includes('UP'), mac: l['address'], mtu: l['mtu'],
  ...(typeof l['ifalias'] === 'string' ? { alias: l['ifalias'] } : {}),
  ...((l['linkinfo'] as { info_kind?: string } | undefined)?.info_kind !== undefined ? { kind: (l['linkinfo'] as { info_kind: string }).info_kind } : {}),
}));
pairs.push({ what: 'the addon\'s link dump, every field', ip: { ok: true, value: fromIp }, netlink: await settle(() => addon().rtnlLinkList()) });

process.stdout.write(`${JSON.stringify(pairs)}\n`);
