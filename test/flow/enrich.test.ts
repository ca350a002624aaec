import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SluiceDirection, SluiceDropReason, SluiceEventFlags } from '../../src/datapath/generated/abi.js';
import { flowOfEvent, flowsOfEvent, tcpFlagsOf } from '../../src/flow/enrich.js';
import { EventTypeCode, TrafficDirection, Verdict } from '../../src/flow/model.js';
import { ALLOWED, event, VIEW } from './helpers.js';

const ctx = { view: VIEW, nodeName: 'node-1', wallOffsetNs: 1_700_000_000_000_000_000n };

test('an ingress policy drop names both pods, the namespace, the direction and says no rule allowed it', () => {
  const f = flowOfEvent(event(), ctx);
  assert.equal(f.verdict, Verdict.DROPPED);
  assert.equal(f.traffic_direction, TrafficDirection.INGRESS);
  assert.deepEqual([f.source.namespace, f.source.pod_name, f.source.identity], ['shop', 'client', 300]);
  assert.deepEqual([f.destination.namespace, f.destination.pod_name, f.destination.ID], ['shop', 'web', 2]);
  assert.ok(f.destination.labels?.includes('k8s:app=web'));
  assert.ok(f.source.labels?.includes('k8s:io.kubernetes.pod.namespace=shop'));
  assert.equal(f.drop_reason_desc, 133, 'POLICY_DENIED in Hubble\'s numbering');
  assert.equal(f.event_type.type, EventTypeCode.DROP);
  assert.deepEqual(f.l4?.TCP, { source_port: 40000, destination_port: 80, flags: { SYN: true } });
  assert.deepEqual(tcpFlagsOf(0x12 | 0x80), { SYN: true, ACK: true, CWR: true });
  assert.equal(flowOfEvent(event({ tcpFlags: 0 }), ctx).l4?.TCP?.flags, undefined);
  assert.match(f.Summary ?? '', /no rule allowed it/);
  assert.equal(f.time.seconds, 1_700_000_001, 'monotonic + offset = wall time');
  assert.equal(f.node_name, 'node-1');
});

test('an allowed new connection names the allowing policy and rule; egress puts the local pod at the source', () => {
  const inbound = flowOfEvent(event(ALLOWED), ctx);
  assert.equal(inbound.verdict, Verdict.FORWARDED);
  assert.deepEqual(inbound.ingress_allowed_by?.map((p) => [p.namespace, p.name]), [['shop', 'web-policy']]);
  assert.ok(inbound.ingress_allowed_by?.[0]?.labels?.includes('sluice:rule=ingress[0]'));
  const outbound = flowOfEvent(event({ ...ALLOWED, direction: SluiceDirection.EGRESS, endpointId: 1, ruleId: 0 }), ctx);
  assert.equal(outbound.traffic_direction, TrafficDirection.EGRESS);
  assert.deepEqual([outbound.source.pod_name, outbound.source.ID, outbound.destination.pod_name], ['client', 1, 'web']);
  assert.equal(outbound.egress_allowed_by, undefined);
});

test('a deny-by-rule drop lists the denying policy; a non-policy drop names its reason only', () => {
  const denied = flowOfEvent(event({ ruleId: 7 }), ctx);
  assert.deepEqual(denied.ingress_denied_by?.map((p) => p.name), ['web-policy']);
  const spoofed = flowOfEvent(event({ dropReason: SluiceDropReason.SPOOFED_SOURCE, flags: 0 }), ctx);
  assert.equal(spoofed.drop_reason_desc, 132);
  assert.doesNotMatch(spoofed.Summary ?? '', /rule/);
});

test('policy-decided events give a policy-verdict flow too; established traffic does not', () => {
  assert.deepEqual(flowsOfEvent(event(), ctx).map((f) => f.event_type.type), [EventTypeCode.POLICY_VERDICT, EventTypeCode.DROP]);
  assert.deepEqual(flowsOfEvent(event(ALLOWED), ctx).map((f) => f.event_type.type), [EventTypeCode.POLICY_VERDICT, EventTypeCode.TRACE]);
  const established = flowsOfEvent(event({ ...ALLOWED, flags: SluiceEventFlags.CT_REPLY }), ctx);
  assert.deepEqual(established.map((f) => f.event_type.type), [EventTypeCode.TRACE]);
  assert.equal(established[0]?.is_reply?.value, true);
});

test('unknown endpoints, identities and rules still give a flow with the numbers', () => {
  const f = flowOfEvent(event({ endpointId: 99, srcIdentity: 5000, saddr: 0x0b000001, ruleId: 42 }), ctx);
  assert.equal(f.destination.pod_name, undefined);
  assert.equal(f.source.identity, 5000);
  assert.equal(f.IP.source, '11.0.0.1');
  assert.deepEqual(f.ingress_denied_by?.map((p) => p.name), ['rule-42']);
});

test('both sides carry their workload when their pods have a controller', () => {
  const web = { kind: 'Deployment', name: 'web' };
  const client = { kind: 'StatefulSet', name: 'client' };
  const view = {
    ...VIEW,
    endpoint: (id: number) => { const e = VIEW.endpoint(id); return e === undefined ? undefined : { ...e, workload: id === 2 ? web : client }; },
    podAt: (ip: string) => { const p = VIEW.podAt(ip); return p === undefined ? undefined : { ...p, workload: ip === '10.0.0.1' ? client : web }; },
  };
  const f = flowOfEvent(event(), { ...ctx, view });
  assert.deepEqual(f.destination.workloads, [web], 'the local endpoint (ingress: the destination)');
  assert.deepEqual(f.source.workloads, [client], 'the remote pod, by address');
  assert.equal(flowOfEvent(event(), ctx).source.workloads, undefined, 'no controller: no workload');
});
