/**
 * How `sluice policy` prints: the reachability matrix as a table with a
 * legend (rows = from, columns = to) or the exact JSON shape of
 * reachability.ts, and an explanation as a few readable lines.
 */
import type { DirectionExplanation, EngineName, Explanation } from '../policy-engine/engine.js';
import { formatRuleRef } from '../policy/model.js';
import type { Reachability } from '../policy/reachability.js';

/** `{"protocol":"TCP","port":80,"pods":[…],"allowed":{…}}` on one line. */
export function reachabilityJson(r: Reachability): string {
  return `${JSON.stringify({ protocol: r.protocol, port: r.port, pods: r.pods, allowed: r.allowed })}\n`;
}

export function reachabilityTable(r: Reachability, engine: EngineName): string {
  const what = r.protocol === 'ICMP' ? 'ICMP' : `${r.protocol}/${r.port}`;
  const width = Math.max(4, ...r.pods.map((p) => p.length)) + 2;
  const lines = [
    `${what} reachability (${engine} engine): rows = from, columns = to`,
    ' '.repeat(width) + r.pods.map((p) => p.padEnd(width)).join('').trimEnd(),
  ];
  let allowed = 0;
  for (const from of r.pods) {
    const cells = r.pods.map((to) => {
      const ok = r.allowed[from]?.[to] === true;
      if (ok) allowed++;
      return (ok ? '.' : 'X').padEnd(width);
    });
    lines.push(from.padEnd(width) + cells.join('').trimEnd());
  }
  const total = r.pods.length * r.pods.length;
  lines.push('', `legend: "." allowed, "X" denied — ${allowed} of ${total} pairs allowed`);
  return `${lines.join('\n')}\n`;
}

export function explanationText(e: Explanation): string {
  const what = e.protocol === 'ICMP' ? 'ICMP' : `${e.protocol}/${e.port}`;
  const lines = [`${e.from} → ${e.to} ${what}: ${e.allowed ? 'ALLOWED' : 'DENIED'} (${e.engine} engine)`];
  lines.push(`  egress from ${e.egress.pod}: ${directionText(e.egress, e, 'to')}`);
  lines.push(`  ingress to ${e.ingress.pod}: ${directionText(e.ingress, e, 'from')}`);
  if (e.reply !== undefined) lines.push(`  reply ${e.to} → ${e.from}: ${e.reply} (conntrack)`);
  return `${lines.join('\n')}\n`;
}

function directionText(d: DirectionExplanation, e: Explanation, toOrFrom: 'to' | 'from'): string {
  const datapath = [
    d.dropReason === undefined ? undefined : `drop reason ${d.dropReason}`,
    d.remoteIdentity === undefined ? undefined : `peer identity ${d.remoteIdentity}`,
  ].filter((s) => s !== undefined);
  const tail = datapath.length === 0 ? '' : ` [datapath: ${datapath.join(', ')}]`;
  const isolated = `isolated by ${d.isolatedBy.join(', ')}`;
  switch (d.verdict) {
    case 'not-isolated':
      return `allowed: not isolated (no policy selects it for ${d.direction})${tail}`;
    case 'allowed':
      return `allowed by ${d.rules.length > 0 ? d.rules.map(formatRuleRef).join(', ') : 'a rule the datapath did not name'} (${isolated})${tail}`;
    case 'not-reached':
      return `not reached (dropped at egress)${d.isolatedBy.length > 0 ? `; ${isolated}` : ''}`;
    case 'denied': {
      const peer = toOrFrom === 'to' ? e.to : e.from;
      const what = e.protocol === 'ICMP' ? 'ICMP' : `${e.protocol}/${e.port}`;
      const whose = d.isolatedBy.length === 1 ? 'its' : 'their';
      return d.isolatedBy.length === 0
        ? `denied, though no policy isolates it${tail}`
        : `denied: ${isolated} and none of ${whose} ${d.direction} rules allows ${toOrFrom} ${peer} on ${what}${tail}`;
    }
  }
}
