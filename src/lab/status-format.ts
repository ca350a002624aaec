/** Human-readable `sluice lab status`. */
import type { LabStatusReport } from './lab.js';

export function formatStatus(r: LabStatusReport): string {
  const { plan } = r.state;
  const head =
    `lab ${plan.name}: ${r.state.status}, ${r.healthy ? 'healthy' : 'UNHEALTHY'}` +
    `  cidr ${plan.cidr}  node ${plan.nodeNetns}${r.nodePresent ? '' : ' (MISSING)'}` +
    (plan.datapath ? `  pins ${plan.pinRoot}` : '  no datapath') +
    (r.state.cluster
      ? `\nkubeconfig ${r.state.cluster.kubeconfig}  lab process ${r.state.cluster.ownerPid}${r.ownerAlive === false ? ' (GONE: control plane and agent with it)' : ''}` +
        '  (pods attached by sluice-cni; identities in the agent)' +
        (r.state.cluster.proxy !== undefined ? `\nservices: ${r.state.cluster.proxy} on every node` : '')
      : '');
  const nodes = r.nodes === undefined ? '' : `${table([
    ['NODE', 'NETNS', 'INTERNAL-IP', 'POD-CIDR', 'ZONE', 'AGENT', 'PODS'],
    ...r.nodes.map((n) => [
      n.name, n.netnsPresent ? n.netns : `${n.netns} (MISSING)`, n.internalIp ?? '-', n.podCidr, n.zone ?? '-', n.agent,
      String(plan.pods.filter((p) => p.node === n.name).length),
    ]),
  ]).join('\n')}\n`;
  const multi = r.nodes !== undefined;
  const rows: string[][] = [['POD', 'IP', ...(multi ? ['NODE'] : []), 'NETNS', 'HOST-IF', 'ENDPOINT', 'IDENTITY', 'LINK', 'PROGRAMS']];
  for (const p of r.pods) {
    const progs = p.programs
      ? `from=${p.programs.fromContainer ?? 'none'} to=${p.programs.toContainer ?? 'none'}`
      : plan.datapath
        ? 'unknown'
        : '-';
    rows.push([
      p.pod.name,
      p.pod.ipv4,
      ...(multi ? [p.pod.node ?? '-'] : []),
      p.netnsPresent ? p.pod.netns : `${p.pod.netns} (MISSING)`,
      p.pod.hostIfname,
      String(p.pod.endpointId),
      p.pod.identity === 0 ? '-' : String(p.pod.identity),
      p.hostLinkUp ? 'up' : 'down',
      progs,
    ]);
  }
  return `${head}\n${nodes}${table(rows).join('\n')}\n`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
}
