/**
 * The reachability matrix of every pod pair for one port and protocol, in the
 * shape `sluice policy reachability -o json` prints:
 * `{"protocol":"TCP","port":80,"pods":["x/a",…],"allowed":{"x/a":{"x/a":true,…},…}}`
 * with pods sorted and `allowed[from][to]`.
 */
import type { Cluster } from './cluster.js';
import type { TrafficProtocol } from './match.js';
import { evaluate } from './model.js';

export interface Reachability {
  readonly protocol: TrafficProtocol;
  readonly port: number;
  readonly pods: readonly string[];
  readonly allowed: Readonly<Record<string, Readonly<Record<string, boolean>>>>;
}

/** Evaluates every ordered pair of `pods` (default: every pod of the cluster). */
export function reachability(
  cluster: Cluster,
  port: number,
  protocol: TrafficProtocol,
  pods: readonly string[] = cluster.pods.map((p) => p.id),
): Reachability {
  const sorted = [...new Set(pods)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const allowed: Record<string, Record<string, boolean>> = {};
  for (const from of sorted) {
    const row: Record<string, boolean> = {};
    for (const to of sorted) row[to] = evaluate(cluster, from, to, port, protocol).allowed;
    allowed[from] = row;
  }
  return { protocol, port, pods: sorted, allowed };
}
