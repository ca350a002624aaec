/**
 * Flows as lines for `sluice observe`: compact (one line per flow, colour on
 * a terminal) and table rows. Works on decoded GetFlowsResponse objects
 * (proto names, numbers; zero values absent), from Sluice or any Hubble
 * server. Every drop names what decided it: the denying policy and rule, or
 * that no rule allowed the packet. Pure.
 */
import { hubbleDropReasonName } from './drop-reasons.js';
import { EventTypeCode, formatTimestamp, TrafficDirection, Verdict, type Flow, type FlowEndpoint, type FlowPolicy, type LostEvent, type Timestamp } from './model.js';
import { lostSourceName } from './observer.js';

const VERDICT_NAMES = new Map<number, string>(Object.entries(Verdict).map(([k, v]) => [v, k]));
const POLICY_DENIED = 133;

export interface PrintOptions {
  readonly color: boolean;
}

function endpointText(ep: FlowEndpoint | undefined, ip: string | undefined, port: number | undefined): string {
  const who = ep?.pod_name ? `${ep.namespace ?? ''}/${ep.pod_name}` : ip ?? '?';
  const addr = port !== undefined && port !== 0 ? `:${port}` : '';
  const id = ep?.identity ? ` (ID:${ep.identity})` : '';
  return `${who}${addr}${id}`;
}

function ports(f: Flow): { src?: number; dst?: number } {
  const p = f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP;
  return p === undefined ? {} : { src: p.source_port ?? 0, dst: p.destination_port ?? 0 };
}

export function protocolText(f: Flow): string {
  if (f.l4?.TCP !== undefined) {
    const flags = Object.entries(f.l4.TCP.flags ?? {}).filter(([, v]) => v === true).map(([k]) => k);
    return flags.length > 0 ? `TCP Flags: ${flags.join(', ')}` : 'TCP';
  }
  if (f.l4?.UDP !== undefined) return 'UDP';
  if (f.l4?.SCTP !== undefined) return 'SCTP';
  if (f.l4?.ICMPv4 !== undefined) return `ICMPv4 type ${f.l4.ICMPv4.type ?? 0} code ${f.l4.ICMPv4.code ?? 0}`;
  return '';
}

function policyName(p: FlowPolicy): string {
  const rule = p.labels?.find((l) => l.startsWith('sluice:rule='))?.slice('sluice:rule='.length);
  return `${p.namespace ? `${p.namespace}/` : ''}${p.name}${rule !== undefined ? ` ${rule}` : ''}`;
}

/** "denied by ns/policy ingress[0]", "no rule allowed it", "allowed by …", or "". */
export function decisionOf(f: Flow): string {
  const denied = [...(f.ingress_denied_by ?? []), ...(f.egress_denied_by ?? [])];
  const allowed = [...(f.ingress_allowed_by ?? []), ...(f.egress_allowed_by ?? [])];
  if (denied.length > 0) return `denied by ${denied.map(policyName).join(', ')}`;
  if (f.verdict === Verdict.DROPPED && (f.drop_reason_desc ?? 0) === POLICY_DENIED) return 'no rule allowed it';
  if (allowed.length > 0) return `allowed by ${allowed.map(policyName).join(', ')}`;
  return '';
}

export function typeText(f: Flow): string {
  switch (f.event_type?.type) {
    case EventTypeCode.DROP: return 'drop';
    case EventTypeCode.POLICY_VERDICT: return 'policy-verdict';
    case EventTypeCode.TRACE: return (f.event_type.sub_type ?? 0) === 101 ? 'to-endpoint' : 'from-endpoint';
    default: return `type-${f.event_type?.type ?? 0}`;
  }
}

function timeText(t: Timestamp | undefined): string {
  return t === undefined ? '-' : formatTimestamp({ seconds: Number(t.seconds ?? 0), nanos: t.nanos ?? 0 });
}

function paint(text: string, code: number, color: boolean): string {
  return color ? `\u001b[${code}m${text}\u001b[0m` : text;
}

function verdictText(f: Flow, color: boolean): string {
  const v = VERDICT_NAMES.get(f.verdict ?? 0) ?? String(f.verdict);
  const reason = f.verdict === Verdict.DROPPED ? ` (${hubbleDropReasonName(f.drop_reason_desc ?? 0)})` : '';
  const code = f.verdict === Verdict.DROPPED ? 31 : f.verdict === Verdict.FORWARDED ? 32 : 33;
  return paint(`${v}${reason}`, code, color);
}

function arrow(f: Flow): string {
  if (f.is_reply === undefined) return '<>';
  return f.is_reply.value ? '<-' : '->';
}

function directionText(f: Flow): string {
  return f.traffic_direction === TrafficDirection.INGRESS ? 'ingress' : f.traffic_direction === TrafficDirection.EGRESS ? 'egress' : '';
}

/** One compact line (no newline). */
export function compactLine(f: Flow, opts: PrintOptions): string {
  const p = ports(f);
  const reply = f.is_reply?.value === true;
  const src = endpointText(f.source, f.IP?.source, p.src);
  const dst = endpointText(f.destination, f.IP?.destination, p.dst);
  const pair = reply ? `${dst} <- ${src}` : `${src} ${arrow(f)} ${dst}`;
  const decision = decisionOf(f);
  return [
    `${timeText(f.time)}:`,
    pair,
    `${typeText(f)} ${directionText(f)}`.trim(),
    verdictText(f, opts.color),
    protocolText(f),
    ...(decision !== '' ? [decision] : []),
  ].join(' ');
}

export const TABLE_HEADER = ['TIMESTAMP', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'] as const;

export function tableRow(f: Flow): string[] {
  const p = ports(f);
  const decision = decisionOf(f);
  return [
    timeText(f.time),
    endpointText(f.source, f.IP?.source, p.src),
    endpointText(f.destination, f.IP?.destination, p.dst),
    `${typeText(f)} ${directionText(f)}`.trim(),
    verdictText(f, false),
    [protocolText(f), decision].filter((s) => s !== '').join('; '),
  ];
}

/** A line for a LostEvent in the stream. */
export function lostLine(l: LostEvent): string {
  const cpu = l.cpu !== undefined ? ` on CPU ${l.cpu.value}` : '';
  return `EVENTS LOST: ${lostSourceName(l.source ?? 0)} lost ${l.num_events_lost ?? 0} events${cpu}`;
}
