/**
 * The flow as Sluice builds, stores, filters and serves it: a plain object
 * with the field names of Hubble's flow.proto (proto/flow/flow.proto), so the
 * same object encodes to Hubble's wire format and to Hubble's exporter JSON
 * without a translation step. Only the fields Sluice sets are typed. Pure.
 */

/** flow.Verdict */
export const Verdict = {
  VERDICT_UNKNOWN: 0,
  FORWARDED: 1,
  DROPPED: 2,
  ERROR: 3,
  AUDIT: 4,
  REDIRECTED: 5,
  TRACED: 6,
  TRANSLATED: 7,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** flow.TrafficDirection */
export const TrafficDirection = { TRAFFIC_DIRECTION_UNKNOWN: 0, INGRESS: 1, EGRESS: 2 } as const;
export type TrafficDirection = (typeof TrafficDirection)[keyof typeof TrafficDirection];

/** flow.FlowType */
export const FlowType = { UNKNOWN_TYPE: 0, L3_L4: 1, L7: 2, SOCK: 3 } as const;

/** flow.IPVersion */
export const IpVersion = { IP_NOT_USED: 0, IPv4: 1, IPv6: 2 } as const;

/** flow.TraceObservationPoint, the values Sluice reports. */
export const TraceObservationPoint = { UNKNOWN_POINT: 0, TO_ENDPOINT: 101, FROM_ENDPOINT: 5 } as const;

/** flow.LostEventSource */
export const LostEventSource = {
  UNKNOWN_LOST_EVENT_SOURCE: 0,
  PERF_EVENT_RING_BUFFER: 1,
  OBSERVER_EVENTS_QUEUE: 2,
  HUBBLE_RING_BUFFER: 3,
} as const;
export type LostEventSource = (typeof LostEventSource)[keyof typeof LostEventSource];

/** CiliumEventType.type values (Hubble's monitor message types). */
export const EventTypeCode = { DROP: 1, TRACE: 4, POLICY_VERDICT: 5 } as const;

/** policy_match_type values (Cilium's policy match kinds). */
export const PolicyMatch = { NONE: 0, L3_ONLY: 1, L3_L4: 2, L4_ONLY: 3, ALL: 4 } as const;

export interface Timestamp {
  readonly seconds: number;
  readonly nanos: number;
}

export interface FlowEndpoint {
  readonly ID?: number;
  readonly identity?: number;
  readonly namespace?: string;
  /** "k8s:key=value", sorted. */
  readonly labels?: readonly string[];
  readonly pod_name?: string;
  readonly workloads?: readonly { readonly name: string; readonly kind: string }[];
}

export interface TcpFlags {
  readonly FIN?: boolean;
  readonly SYN?: boolean;
  readonly RST?: boolean;
  readonly PSH?: boolean;
  readonly ACK?: boolean;
  readonly URG?: boolean;
  readonly ECE?: boolean;
  readonly CWR?: boolean;
  readonly NS?: boolean;
}

export interface Ports {
  readonly source_port: number;
  readonly destination_port: number;
}

export interface Layer4 {
  readonly TCP?: Ports & { readonly flags?: TcpFlags };
  readonly UDP?: Ports;
  readonly SCTP?: Ports;
  readonly ICMPv4?: { readonly type: number; readonly code: number };
}

export interface FlowPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly labels?: readonly string[];
  readonly revision?: number;
  readonly kind?: string;
}

export interface Flow {
  readonly time: Timestamp;
  readonly uuid?: string;
  readonly verdict: Verdict;
  readonly drop_reason?: number;
  readonly IP: { readonly source: string; readonly destination: string; readonly ipVersion: number };
  readonly l4?: Layer4;
  readonly source: FlowEndpoint;
  readonly destination: FlowEndpoint;
  readonly Type: number;
  readonly node_name: string;
  readonly event_type: { readonly type: number; readonly sub_type?: number };
  readonly traffic_direction: TrafficDirection;
  readonly policy_match_type?: number;
  readonly trace_observation_point?: number;
  readonly drop_reason_desc?: number;
  readonly is_reply?: { readonly value: boolean };
  readonly interface?: { readonly index: number; readonly name?: string };
  readonly Summary?: string;
  readonly egress_allowed_by?: readonly FlowPolicy[];
  readonly ingress_allowed_by?: readonly FlowPolicy[];
  readonly egress_denied_by?: readonly FlowPolicy[];
  readonly ingress_denied_by?: readonly FlowPolicy[];
}

export interface LostEvent {
  readonly source: LostEventSource;
  readonly num_events_lost: number;
  readonly cpu?: { readonly value: number };
  readonly first?: Timestamp;
  readonly last?: Timestamp;
}

export interface WorkloadFilter {
  readonly name?: string;
  readonly kind?: string;
}

export interface EventTypeFilter {
  readonly type?: number;
  readonly match_sub_type?: boolean;
  readonly sub_type?: number;
}

/** flow.FlowFilter, the fields Sluice evaluates (others are refused as unsupported). */
export interface FlowFilter {
  readonly uuid?: readonly string[];
  readonly source_ip?: readonly string[];
  readonly source_pod?: readonly string[];
  readonly source_label?: readonly string[];
  readonly source_identity?: readonly number[];
  readonly source_workload?: readonly WorkloadFilter[];
  readonly destination_ip?: readonly string[];
  readonly destination_pod?: readonly string[];
  readonly destination_label?: readonly string[];
  readonly destination_identity?: readonly number[];
  readonly destination_workload?: readonly WorkloadFilter[];
  readonly traffic_direction?: readonly number[];
  readonly verdict?: readonly number[];
  readonly drop_reason_desc?: readonly number[];
  readonly event_type?: readonly EventTypeFilter[];
  readonly protocol?: readonly string[];
  readonly source_port?: readonly string[];
  readonly destination_port?: readonly string[];
  readonly reply?: readonly boolean[];
  readonly tcp_flags?: readonly TcpFlags[];
  readonly node_name?: readonly string[];
  readonly ip_version?: readonly number[];
  /** Any other FlowFilter field a client sent, by proto name: refused as unsupported when non-empty. */
  readonly [other: string]: readonly unknown[] | undefined;
}

/** One item of a GetFlows stream (observer.GetFlowsResponse without the envelope). */
export type FlowEvent =
  | { readonly kind: 'flow'; readonly flow: Flow }
  | { readonly kind: 'lost'; readonly lost: LostEvent; readonly time: Timestamp };

export function timestampOfMs(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

export function timestampToNs(t: Timestamp): bigint {
  return BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanos);
}

/** RFC 3339 with nanoseconds, as protojson writes a Timestamp ("2026-12-07T03:27:37.123456789Z"). */
export function formatTimestamp(t: Timestamp): string {
  const base = new Date(t.seconds * 1000).toISOString().slice(0, 19);
  if (t.nanos === 0) return `${base}Z`;
  let frac = String(t.nanos).padStart(9, '0');
  // protojson prints 3, 6 or 9 digits.
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  return `${base}.${frac}Z`;
}

/** Parses an RFC 3339 time (any fraction length, Z or an offset). */
export function parseTimestamp(s: string): Timestamp | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(s);
  if (m === null) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return { seconds: ms / 1000, nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}
