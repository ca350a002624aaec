/**
 * `sluice observe` options as a GetFlows request, with `hubble observe`'s
 * meaning: --pod, --namespace, --label and --port match either side (two
 * filters: one for the source side, one for the destination side), --from-*
 * and --to-* one side; other options narrow both. Pure.
 */
import { hubbleDropReasonByName } from './drop-reasons.js';
import { EventTypeCode, parseTimestamp, TrafficDirection, Verdict, type FlowFilter, type Timestamp } from './model.js';

export interface ObserveOptions {
  readonly follow?: boolean;
  readonly last?: number;
  readonly first?: number;
  readonly since?: string;
  readonly until?: string;
  readonly namespace?: readonly string[];
  readonly pod?: readonly string[];
  readonly fromPod?: readonly string[];
  readonly toPod?: readonly string[];
  readonly label?: readonly string[];
  readonly fromLabel?: readonly string[];
  readonly toLabel?: readonly string[];
  readonly verdict?: readonly string[];
  readonly protocol?: readonly string[];
  readonly port?: readonly string[];
  readonly type?: readonly string[];
  readonly dropReason?: readonly string[];
  readonly direction?: readonly string[];
}

export class ObserveOptionError extends Error {
  readonly code = 'invalid-option';
  constructor(readonly option: string, message: string) {
    super(`${option}: ${message}`);
    this.name = 'ObserveOptionError';
  }
}

export interface ObserveRequest {
  readonly number: number;
  readonly first: boolean;
  readonly follow: boolean;
  readonly whitelist: FlowFilter[];
  readonly blacklist: FlowFilter[];
  readonly since?: Timestamp;
  readonly until?: Timestamp;
}

/** "2026-12-07T03:00:00Z", or a duration ago: "90s", "5m", "2h", "1d". */
export function parseTime(text: string, option: string, nowMs: number): Timestamp {
  const rel = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  if (rel !== null) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    const ms = nowMs - Number(rel[1]) * unit;
    const seconds = Math.floor(ms / 1000);
    return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
  }
  const t = parseTimestamp(text);
  if (t === undefined) throw new ObserveOptionError(option, `"${text}" is neither an RFC 3339 time nor a duration ago (90s, 5m, 2h)`);
  return t;
}

const TYPES: Readonly<Record<string, number>> = { drop: EventTypeCode.DROP, trace: EventTypeCode.TRACE, 'policy-verdict': EventTypeCode.POLICY_VERDICT };

function enumValue(table: Readonly<Record<string, number>>, text: string, option: string): number {
  const v = table[text.toUpperCase()];
  if (v === undefined) throw new ObserveOptionError(option, `"${text}": want one of ${Object.keys(table).join(', ')}`);
  return v;
}

/** A pod argument as a FlowFilter pod value: "ns/name", "name" in the namespace given (or "default"). */
function podValue(p: string, namespace: string | undefined): string {
  return p.includes('/') ? p : `${namespace ?? 'default'}/${p}`;
}

export function observeRequest(o: ObserveOptions, nowMs: number): ObserveRequest {
  const base: Record<string, unknown[]> = {};
  const add = (field: string, values: readonly unknown[]): void => {
    if (values.length > 0) base[field] = [...(base[field] ?? []), ...values];
  };
  add('verdict', (o.verdict ?? []).map((v) => enumValue(Verdict, v, '--verdict')));
  for (const p of o.protocol ?? []) {
    if (!['tcp', 'udp', 'sctp', 'icmp', 'icmpv4'].includes(p.toLowerCase())) throw new ObserveOptionError('--protocol', `"${p}": want tcp, udp, sctp or icmp`);
  }
  add('protocol', o.protocol ?? []);
  add('event_type', (o.type ?? []).map((t) => {
    const code = TYPES[t];
    if (code === undefined) throw new ObserveOptionError('--type', `"${t}": want drop, trace or policy-verdict`);
    return { type: code };
  }));
  add('drop_reason_desc', (o.dropReason ?? []).map((r) => {
    const n = hubbleDropReasonByName(r.toUpperCase());
    if (n === undefined) throw new ObserveOptionError('--drop-reason', `"${r}" is not a drop reason name (POLICY_DENIED, ...)`);
    return n;
  }));
  add('traffic_direction', (o.direction ?? []).map((d) => enumValue({ INGRESS: TrafficDirection.INGRESS, EGRESS: TrafficDirection.EGRESS }, d, '--traffic-direction')));
  for (const p of o.port ?? []) {
    if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) throw new ObserveOptionError('--port', `"${p}" is not a port`);
  }

  const namespace = o.namespace?.[0];
  const pods = (o.pod ?? []).map((p) => podValue(p, namespace));
  // --namespace alone means the whole namespace; with --pod it qualifies the pod names.
  const nsPods = pods.length === 0 ? (o.namespace ?? []).map((n) => `${n}/`) : [];
  const from: Record<string, unknown[]> = {};
  const to: Record<string, unknown[]> = {};
  if ((o.fromPod ?? []).length > 0) from['source_pod'] = (o.fromPod ?? []).map((p) => podValue(p, namespace));
  if ((o.toPod ?? []).length > 0) to['destination_pod'] = (o.toPod ?? []).map((p) => podValue(p, namespace));
  if ((o.fromLabel ?? []).length > 0) from['source_label'] = [...(o.fromLabel ?? [])];
  if ((o.toLabel ?? []).length > 0) to['destination_label'] = [...(o.toLabel ?? [])];

  const either: [string, readonly unknown[]][] = [['pod', [...pods, ...nsPods]], ['label', o.label ?? []], ['port', o.port ?? []]];
  const bidirectional = either.some(([, v]) => v.length > 0);
  const whitelist: FlowFilter[] = [];
  if (bidirectional) {
    for (const side of ['source', 'destination'] as const) {
      const f: Record<string, unknown[]> = { ...base, ...from, ...to };
      for (const [name, values] of either) if (values.length > 0) f[`${side}_${name}`] = [...values];
      whitelist.push(f);
    }
  } else {
    const f = { ...base, ...from, ...to };
    if (Object.keys(f).length > 0) whitelist.push(f);
  }

  const follow = o.follow === true;
  const first = o.first !== undefined;
  const since = o.since !== undefined ? parseTime(o.since, '--since', nowMs) : undefined;
  const until = o.until !== undefined ? parseTime(o.until, '--until', nowMs) : undefined;
  if (first && follow) throw new ObserveOptionError('--first', 'cannot be combined with --follow');
  // Like hubble observe: 20 flows by default; following without --last starts with new flows only.
  const number = first ? (o.first ?? 0) : o.last ?? (follow || since !== undefined ? 0 : 20);
  return {
    number, first, follow, whitelist, blacklist: [],
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
  };
}
