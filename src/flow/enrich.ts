/**
 * A datapath event (struct sluice_event) as Hubble flows, named from the
 * applied view: the local endpoint's pod and namespace, each side's identity
 * labels, the remote pod by address, and the policy and rule behind the
 * event's rule id. Pure: the view, the node name and the clock offset come in.
 *
 * One event gives one flow, plus a policy-verdict flow when policy decided
 * the packet (a new connection, a re-check after a policy change, or a
 * policy drop): Hubble's clients select those with --type policy-verdict.
 */
import { formatIpv4 } from '../policy/cidr.js';
import { IP_PROTOCOL } from '../policy/protocols.js';
import {
  SluiceDirection,
  SluiceDropReason,
  SluiceEventFlags,
  SluiceEventType,
  sluiceDropReasonName,
  type SluiceEvent,
} from '../datapath/generated/abi.js';
import type { AppliedIdentity, AppliedView } from '../reconcile/applied-view.js';
import { hubbleDropReason } from './drop-reasons.js';
import {
  EventTypeCode,
  FlowType,
  IpVersion,
  PolicyMatch,
  TraceObservationPoint,
  TrafficDirection,
  Verdict,
  type Flow,
  type FlowEndpoint,
  type FlowPolicy,
  type Layer4,
  type TcpFlags,
  type Timestamp,
} from './model.js';

export interface EnrichContext {
  readonly view: AppliedView;
  readonly nodeName: string;
  /** Wall-clock ns minus monotonic ns (bpf_ktime_get_ns is CLOCK_MONOTONIC). */
  readonly wallOffsetNs: bigint;
}

const POLICY_FLAGS = SluiceEventFlags.CT_NEW | SluiceEventFlags.CT_RECHECKED;

/** The flows one datapath event stands for (one, or two with its policy verdict). */
export function flowsOfEvent(ev: SluiceEvent, ctx: EnrichContext): Flow[] {
  const flow = flowOfEvent(ev, ctx);
  const decidedByPolicy = ev.dropReason === SluiceDropReason.POLICY_DENIED
    || (ev.eventType === SluiceEventType.TRACE && (ev.flags & POLICY_FLAGS) !== 0);
  if (!decidedByPolicy) return [flow];
  const verdict: Flow = {
    ...flow,
    event_type: { type: EventTypeCode.POLICY_VERDICT, sub_type: 0 },
    policy_match_type: ev.ruleId !== 0 ? PolicyMatch.L3_L4 : PolicyMatch.NONE,
    Summary: flow.Summary?.replace(/^[A-Z-]+/, 'policy-verdict') ?? 'policy-verdict',
  };
  return [verdict, flow];
}

export function flowOfEvent(ev: SluiceEvent, ctx: EnrichContext): Flow {
  const ingress = ev.direction === SluiceDirection.INGRESS;
  const dropped = ev.eventType === SluiceEventType.DROP;
  const saddr = formatIpv4(ev.saddr);
  const daddr = formatIpv4(ev.daddr);
  const local = localEndpoint(ev, ctx.view, ingress ? ev.dstIdentity : ev.srcIdentity);
  const remote = remoteEndpoint(ingress ? saddr : daddr, ingress ? ev.srcIdentity : ev.dstIdentity, ctx.view);
  const source = ingress ? remote : local;
  const destination = ingress ? local : remote;
  const reply = (ev.flags & SluiceEventFlags.CT_REPLY) !== 0;
  const tracked = (ev.flags & (SluiceEventFlags.CT_NEW | SluiceEventFlags.CT_ESTABLISHED | SluiceEventFlags.CT_REPLY | SluiceEventFlags.CT_RELATED)) !== 0;
  const policies = ev.ruleId !== 0 ? policyOfRule(ev.ruleId, ctx.view) : undefined;
  const hubbleReason = dropped ? hubbleDropReason(ev.dropReason) : 0;
  const summary = summaryOf(ev, policies);
  return {
    time: timeOf(ev.timestampNs, ctx.wallOffsetNs),
    verdict: dropped ? Verdict.DROPPED : Verdict.FORWARDED,
    ...(dropped ? { drop_reason: ev.dropReason, drop_reason_desc: hubbleReason } : {}),
    IP: { source: saddr, destination: daddr, ipVersion: IpVersion.IPv4 },
    ...layer4Of(ev),
    source,
    destination,
    Type: FlowType.L3_L4,
    node_name: ctx.nodeName,
    event_type: dropped
      ? { type: EventTypeCode.DROP, sub_type: hubbleReason }
      : { type: EventTypeCode.TRACE, sub_type: ingress ? TraceObservationPoint.TO_ENDPOINT : TraceObservationPoint.FROM_ENDPOINT },
    traffic_direction: ingress ? TrafficDirection.INGRESS : TrafficDirection.EGRESS,
    ...(dropped ? {} : { trace_observation_point: ingress ? TraceObservationPoint.TO_ENDPOINT : TraceObservationPoint.FROM_ENDPOINT }),
    ...(tracked || dropped ? { is_reply: { value: reply } } : {}),
    interface: { index: ev.ifindex },
    Summary: summary,
    ...(policies !== undefined ? policyFields(ingress, dropped, policies) : {}),
  };
}

function timeOf(ktimeNs: bigint, offsetNs: bigint): Timestamp {
  const ns = ktimeNs + offsetNs;
  return { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) };
}

/**
 * Label lists by identity, per applied view: a view is immutable and replaced whole, so its
 * answers can be kept as long as it lives (a WeakMap drops them with it). The lists are shared
 * by every flow of that identity and never modified.
 */
const LABELS = new WeakMap<AppliedView, Map<number, readonly string[]>>();

function labelsFor(view: AppliedView, id: number): readonly string[] {
  let byId = LABELS.get(view);
  if (byId === undefined) {
    byId = new Map();
    LABELS.set(view, byId);
  }
  let labels = byId.get(id);
  if (labels === undefined) {
    labels = Object.freeze(labelsOf(view.identity(id)));
    byId.set(id, labels);
  }
  return labels;
}

/** "k8s:app=web" labels, plus the namespace label Hubble shows for pods. */
function labelsOf(identity: AppliedIdentity | undefined): string[] {
  if (identity === undefined) return [];
  const out = Object.entries(identity.labels).map(([k, v]) => `k8s:${k}=${v}`);
  if (identity.namespace !== undefined) out.push(`k8s:io.kubernetes.pod.namespace=${identity.namespace}`);
  if (identity.kind === 'cidr') for (const t of identity.terms) out.push(`cidr:${t}`);
  return out.sort();
}

function localEndpoint(ev: SluiceEvent, view: AppliedView, identity: number): FlowEndpoint {
  const ep = view.endpoint(ev.endpointId);
  return {
    ID: ev.endpointId,
    identity,
    ...(ep !== undefined ? { namespace: ep.namespace, pod_name: ep.pod } : {}),
    labels: labelsFor(view, identity),
    ...(ep?.workload !== undefined ? { workloads: [ep.workload] } : {}),
  };
}

function remoteEndpoint(address: string, identity: number, view: AppliedView): FlowEndpoint {
  const pod = view.podAt(address);
  const namespace = pod?.namespace ?? view.identity(identity)?.namespace;
  return {
    identity,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(pod !== undefined ? { pod_name: pod.pod } : {}),
    labels: labelsFor(view, identity),
    ...(pod?.workload !== undefined ? { workloads: [pod.workload] } : {}),
  };
}

function layer4Of(ev: SluiceEvent): { l4?: Layer4 } {
  const ports = { source_port: ev.sport, destination_port: ev.dport };
  switch (ev.protocol) {
    case IP_PROTOCOL.TCP: return { l4: { TCP: ev.tcpFlags !== 0 ? { ...ports, flags: tcpFlagsOf(ev.tcpFlags) } : ports } };
    case IP_PROTOCOL.UDP: return { l4: { UDP: ports } };
    case IP_PROTOCOL.SCTP: return { l4: { SCTP: ports } };
    case IP_PROTOCOL.ICMP: return { l4: { ICMPv4: { type: ev.sport, code: ev.dport } } };
    default: return {};
  }
}

const TCP_FLAG_BITS: ReadonlyArray<readonly [keyof TcpFlags, number]> = [
  ['FIN', 0x01], ['SYN', 0x02], ['RST', 0x04], ['PSH', 0x08], ['ACK', 0x10], ['URG', 0x20], ['ECE', 0x40], ['CWR', 0x80],
];

/** The TCP header's flag byte as Hubble's TCPFlags (set flags only). */
export function tcpFlagsOf(byte: number): TcpFlags {
  const out: Partial<Record<keyof TcpFlags, boolean>> = {};
  for (const [name, bit] of TCP_FLAG_BITS) if (byte & bit) out[name] = true;
  return out;
}

/** The policy behind a rule id, as Hubble's Policy message (labels name the rule). */
function policyOfRule(ruleId: number, view: AppliedView): FlowPolicy {
  const rule = view.rule(ruleId);
  if (rule === undefined) return { name: `rule-${ruleId}`, namespace: '', kind: 'NetworkPolicy', labels: [`sluice:rule-id=${ruleId}`] };
  const slash = rule.policy.indexOf('/');
  return {
    name: rule.policy.slice(slash + 1),
    namespace: rule.policy.slice(0, slash),
    kind: 'NetworkPolicy',
    labels: [`sluice:rule=${rule.direction}[${rule.index}]`, `sluice:rule-id=${ruleId}`],
  };
}

function policyFields(ingress: boolean, dropped: boolean, policy: FlowPolicy): Partial<Flow> {
  if (dropped) return ingress ? { ingress_denied_by: [policy] } : { egress_denied_by: [policy] };
  return ingress ? { ingress_allowed_by: [policy] } : { egress_allowed_by: [policy] };
}

/** The rule text a drop or an allow gives: who decided, or that no rule allowed it. */
export function decisionText(ev: SluiceEvent, policy: FlowPolicy | undefined): string {
  if (policy !== undefined) {
    const rule = policy.labels?.find((l) => l.startsWith('sluice:rule='))?.slice('sluice:rule='.length);
    const name = policy.namespace !== '' ? `${policy.namespace}/${policy.name}` : policy.name;
    return `${ev.eventType === SluiceEventType.DROP ? 'denied by' : 'allowed by'} ${name}${rule !== undefined ? ` ${rule}` : ''}`;
  }
  if (ev.dropReason === SluiceDropReason.POLICY_DENIED) return 'no rule allowed it';
  return '';
}

function summaryOf(ev: SluiceEvent, policy: FlowPolicy | undefined): string {
  const what = ev.eventType === SluiceEventType.DROP ? `DROP ${sluiceDropReasonName(ev.dropReason)}` : 'TRACE';
  const decision = decisionText(ev, policy);
  return decision !== '' ? `${what} (${decision})` : what;
}
