/**
 * Hubble's flow metrics on the agent's Prometheus endpoint, with Hubble's
 * names and label sets, so Hubble's dashboards read Sluice:
 * hubble_flows_processed_total{protocol,type,subtype,verdict},
 * hubble_drop_total{reason,protocol},
 * hubble_policy_verdicts_total{direction,match,action},
 * hubble_lost_events_total{source}.
 */
import { Counter, type Registry } from 'prom-client';
import { hubbleDropReasonName } from '../flow/drop-reasons.js';
import { lostSourceName } from '../flow/observer.js';
import { EventTypeCode, TraceObservationPoint, Verdict, type Flow, type LostEventSource } from '../flow/model.js';

const VERDICT_NAMES = new Map<number, string>(Object.entries(Verdict).map(([k, v]) => [v, k]));

function protocolOf(f: Flow): string {
  if (f.l4?.TCP !== undefined) return 'TCP';
  if (f.l4?.UDP !== undefined) return 'UDP';
  if (f.l4?.SCTP !== undefined) return 'SCTP';
  if (f.l4?.ICMPv4 !== undefined) return 'ICMPv4';
  return 'Unknown';
}

function typeOf(f: Flow): { type: string; subtype: string } {
  switch (f.event_type.type) {
    case EventTypeCode.DROP: return { type: 'Drop', subtype: '' };
    case EventTypeCode.POLICY_VERDICT: return { type: 'PolicyVerdict', subtype: '' };
    case EventTypeCode.TRACE:
      return { type: 'Trace', subtype: f.event_type.sub_type === TraceObservationPoint.TO_ENDPOINT ? 'to-endpoint' : 'from-endpoint' };
    default: return { type: 'Unknown', subtype: '' };
  }
}

export class FlowMetrics {
  private readonly processed: Counter<'protocol' | 'type' | 'subtype' | 'verdict'>;
  private readonly drops: Counter<'reason' | 'protocol'>;
  private readonly verdicts: Counter<'direction' | 'match' | 'action'>;
  private readonly lost: Counter<'source'>;

  constructor(registry: Registry) {
    this.processed = new Counter({
      name: 'hubble_flows_processed_total',
      help: 'Total number of flows processed',
      labelNames: ['protocol', 'type', 'subtype', 'verdict'] as const,
      registers: [registry],
    });
    this.drops = new Counter({
      name: 'hubble_drop_total',
      help: 'Number of drops',
      labelNames: ['reason', 'protocol'] as const,
      registers: [registry],
    });
    this.verdicts = new Counter({
      name: 'hubble_policy_verdicts_total',
      help: 'Number of policy verdicts',
      labelNames: ['direction', 'match', 'action'] as const,
      registers: [registry],
    });
    this.lost = new Counter({
      name: 'hubble_lost_events_total',
      help: 'Number of lost events',
      labelNames: ['source'] as const,
      registers: [registry],
    });
  }

  flow(f: Flow): void {
    const protocol = protocolOf(f);
    const verdict = VERDICT_NAMES.get(f.verdict) ?? String(f.verdict);
    this.processed.inc({ protocol, ...typeOf(f), verdict });
    if (f.event_type.type === EventTypeCode.DROP) this.drops.inc({ reason: hubbleDropReasonName(f.drop_reason_desc ?? 0), protocol });
    if (f.event_type.type === EventTypeCode.POLICY_VERDICT) {
      this.verdicts.inc({
        direction: f.traffic_direction === 1 ? 'ingress' : 'egress',
        match: f.policy_match_type ? 'l3-l4' : 'none',
        action: f.verdict === Verdict.DROPPED ? 'dropped' : 'forwarded',
      });
    }
  }

  lostEvents(source: LostEventSource, n: number): void {
    this.lost.inc({ source: lostSourceName(source).toLowerCase() }, n);
  }
}
