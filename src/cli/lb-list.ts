/**
 * What `sluice lb list` prints, read from the load balancer's maps through
 * their codecs (src/datapath/maps/lb-*.ts), like `cilium service list`: one
 * row per frontend entry, with the backends of the table it uses (how many
 * table slots each holds) and the service's serving-only backends (existing
 * connections only).
 */
import { dumpLbBackends, type LbBackendsMap } from '../datapath/maps/lb-backends.js';
import { formatFrontend, type LbServicesMap } from '../datapath/maps/lb-services.js';
import type { LbTables } from '../datapath/maps/lb-tables.js';
import { SluiceLbAlgorithm, SluiceLbScope, SluiceLbSet, SluiceLbSvcFlags } from '../datapath/generated/abi.js';

export interface LbListBackend {
  readonly backendId: number;
  /** "10.0.1.5:8080"; "" when the table names an id the backend map does not hold. */
  readonly address: string;
  /** active: new connections may get it; serving-only: existing ones keep it; missing: named by the table, not in the backend map. */
  readonly state: 'active' | 'serving-only' | 'missing';
  /** Table elements naming it (Maglev: its share of the M slots); 0 for serving-only. */
  readonly slots: number;
}

export interface LbListRow {
  readonly serviceId: number;
  /** "10.96.0.10:80/TCP". */
  readonly frontend: string;
  /** pod: this node's pods; external: traffic from outside the node. */
  readonly scope: 'pod' | 'external';
  readonly backendSet: 'cluster' | 'local';
  readonly algorithm: 'maglev' | 'random';
  /** 0: no ClientIP affinity. */
  readonly affinityTimeoutS: number;
  /** What a connection gets while the table is empty. */
  readonly whenEmpty: 'reject' | 'drop';
  /** External scope under externalTrafficPolicy Cluster: the client's address is replaced by the node's. */
  readonly masquerade: boolean;
  /** Elements of its table (Maglev: M; random: the backends); 0: no table. */
  readonly tableSize: number;
  readonly backends: readonly LbListBackend[];
}

export interface LbListMaps {
  readonly services: LbServicesMap;
  readonly backends: LbBackendsMap;
  readonly tables: Pick<LbTables, 'read'>;
}

export function lbList(maps: LbListMaps): LbListRow[] {
  const backends = dumpLbBackends(maps.backends);
  const byId = new Map(backends.map((b) => [b.backendId, b]));
  const servingOnly = new Map<number, LbListBackend[]>();
  for (const b of backends) {
    if (b.state !== 'serving-only') continue;
    const list = servingOnly.get(b.serviceId) ?? [];
    list.push({ backendId: b.backendId, address: b.address, state: 'serving-only', slots: 0 });
    servingOnly.set(b.serviceId, list);
  }
  const tables = new Map<string, Uint32Array | undefined>();
  return [...maps.services.entries()].map(([key, s]): LbListRow => {
    const set = s.backendSet;
    const tkey = `${s.serviceId}:${set}`;
    if (!tables.has(tkey)) tables.set(tkey, maps.tables.read({ serviceId: s.serviceId, backendSet: set }));
    const table = tables.get(tkey);
    const slots = new Map<number, number>();
    for (const id of table ?? []) slots.set(id, (slots.get(id) ?? 0) + 1);
    const inTable = [...slots].map(([backendId, n]): LbListBackend => {
      const b = byId.get(backendId);
      return b === undefined || b.serviceId !== s.serviceId
        ? { backendId, address: '', state: 'missing', slots: n }
        : { backendId, address: b.address, state: b.state === 'active' ? 'active' : 'serving-only', slots: n };
    }).sort((a, b) => a.backendId - b.backendId);
    return {
      serviceId: s.serviceId,
      frontend: formatFrontend(key),
      scope: key.scope === SluiceLbScope.EXTERNAL ? 'external' : 'pod',
      backendSet: set === SluiceLbSet.LOCAL ? 'local' : 'cluster',
      algorithm: s.algorithm === SluiceLbAlgorithm.RANDOM ? 'random' : 'maglev',
      affinityTimeoutS: s.affinityTimeoutS,
      whenEmpty: (s.flags & SluiceLbSvcFlags.EMPTY_DROP) !== 0 ? 'drop' : 'reject',
      masquerade: (s.flags & SluiceLbSvcFlags.MASQUERADE) !== 0,
      tableSize: table?.length ?? 0,
      backends: [...inTable, ...(servingOnly.get(s.serviceId) ?? [])],
    };
  }).sort((a, b) => a.serviceId - b.serviceId || (a.frontend < b.frontend ? -1 : a.frontend > b.frontend ? 1 : 0) || (a.scope < b.scope ? 1 : a.scope > b.scope ? -1 : 0));
}

/** A table like `cilium service list`: ID, frontend, scope, set, algorithm, then one line per backend. */
export function lbListText(rows: readonly LbListRow[]): string {
  const head = ['ID', 'FRONTEND', 'SCOPE', 'SET', 'ALGORITHM', 'AFFINITY', 'BACKENDS'];
  const lines: string[][] = [head];
  for (const r of rows) {
    const first = [String(r.serviceId), r.frontend, r.masquerade ? `${r.scope}+masq` : r.scope, r.backendSet, r.algorithm, r.affinityTimeoutS > 0 ? `${r.affinityTimeoutS}s` : '-'];
    const bs = r.backends.map((b) => `${b.backendId} => ${b.address || '?'} (${b.state}${b.state === 'serving-only' ? '' : `, ${b.slots}/${r.tableSize} slots`})`);
    if (bs.length === 0) bs.push(`none: ${r.whenEmpty}`);
    lines.push([...first, bs[0] ?? '']);
    for (const b of bs.slice(1)) lines.push(['', '', '', '', '', '', b]);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}
