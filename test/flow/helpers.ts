/** Shared by the flow tests: a small applied view and datapath events to feed the pipeline. */
import { SluiceDirection, SluiceEventFlags, SluiceEventType, type SluiceEvent } from '../../src/datapath/generated/abi.js';
import { EMPTY_APPLIED_VIEW, type AppliedView } from '../../src/reconcile/applied-view.js';

/** 10.0.0.1 = shop/client (endpoint 1, identity 300), 10.0.0.2 = shop/web (endpoint 2, identity 301); rule 7 allows, both in shop/web-policy. */
export const VIEW: AppliedView = {
  ...EMPTY_APPLIED_VIEW,
  generation: 1,
  endpoint: (id) => (id === 1 ? { endpointId: 1, namespace: 'shop', pod: 'client', identity: 300 }
    : id === 2 ? { endpointId: 2, namespace: 'shop', pod: 'web', identity: 301 } : undefined),
  identity: (id) => (id === 300 ? { id, kind: 'pod', namespace: 'shop', labels: { app: 'client' }, pods: ['shop/client'], terms: [] }
    : id === 301 ? { id, kind: 'pod', namespace: 'shop', labels: { app: 'web', tier: 'front' }, pods: ['shop/web'], terms: [] } : undefined),
  rule: (id) => (id === 7 ? { ruleId: 7, policy: 'shop/web-policy', direction: 'ingress', index: 0 } : undefined),
  podAt: (ip) => (ip === '10.0.0.1' ? { namespace: 'shop', pod: 'client', identity: 300 }
    : ip === '10.0.0.2' ? { namespace: 'shop', pod: 'web', identity: 301 } : undefined),
};

const CLIENT = 0x0a000001;
const WEB = 0x0a000002;

/** client → web:80/TCP arriving at web (ingress, endpoint 2), as a drop or a trace. */
export function event(over: Partial<SluiceEvent> = {}): SluiceEvent {
  return {
    timestampNs: 1_000_000_000n,
    saddr: CLIENT, daddr: WEB, sport: 40000, dport: 80, protocol: 6,
    eventType: SluiceEventType.DROP, verdict: 2, direction: SluiceDirection.INGRESS,
    srcIdentity: 300, dstIdentity: 301, endpointId: 2, ifindex: 12, pktLen: 60,
    dropReason: 1, flags: SluiceEventFlags.CT_NEW, ruleId: 0, tcpFlags: 0x02,
    ...over,
  };
}

export const ALLOWED = { eventType: SluiceEventType.TRACE, verdict: 1, dropReason: 0, ruleId: 7 } as const;
