import assert from 'node:assert/strict';
import { test } from 'node:test';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { flowOfEvent } from '../../src/flow/enrich.js';
import { fileDescriptors } from '../../src/flow/wire/descriptors.js';
import { fromProtoJson, toProtoJson } from '../../src/flow/wire/json.js';
import { readRequestOf } from '../../src/flow/wire/messages.js';
import { decodeMessage, encodeMessage, observerSchema } from '../../src/flow/wire/schema.js';
import { FilterError } from '../../src/flow/filter.js';
import { event, VIEW } from './helpers.js';

const schema = observerSchema();
const flow = flowOfEvent(event({ timestampNs: 1_500_000_000n }), { view: VIEW, nodeName: 'n1', wallOffsetNs: 1_765_000_000_000_000_000n });

test('a flow survives the wire with Hubble\'s field numbers', () => {
  const bytes = encodeMessage(schema.GetFlowsResponse, { flow, node_name: 'n1', time: flow.time });
  const back = decodeMessage<{ flow: typeof flow; node_name: string }>(schema.GetFlowsResponse, bytes);
  assert.deepEqual({ ...back.flow.source, workloads: undefined }, { ...flow.source, workloads: undefined }, 'repeated fields decode as lists (workloads: [])');
  assert.equal(back.flow.drop_reason_desc, 133);
  assert.equal(back.node_name, 'n1');
  // Field 5 (IP) of flow.Flow, inside field 1 (flow) of the response: tag (5 << 3 | 2) = 0x2a.
  assert.ok(encodeMessage(schema.Flow, flow).includes(0x2a));
  assert.equal(schema.Flow.fields['drop_reason_desc']?.id, 25);
  assert.equal(schema.Flow.fields['ingress_denied_by']?.id, 21005);
  assert.equal(schema.GetFlowsRequest.fields['whitelist']?.id, 6);
});

test('protojson: proto names, enum names, RFC 3339 times, bare wrappers, 64-bit as strings, zero values left out', () => {
  const json = toProtoJson(schema.ExportEvent, { flow, node_name: 'n1', time: flow.time });
  const f = json['flow'] as Record<string, unknown>;
  assert.equal(f['verdict'], 'DROPPED');
  assert.equal(f['drop_reason_desc'], 'POLICY_DENIED');
  assert.equal(f['traffic_direction'], 'INGRESS');
  assert.equal(f['time'], '2025-12-06T05:46:41.500Z');
  assert.equal(f['is_reply'], false);
  assert.equal('policy_match_type' in f, false);
  assert.deepEqual((f['destination'] as Record<string, unknown>)['pod_name'], 'web');
  const status = toProtoJson(schema.ServerStatusResponse, { num_flows: 3, max_flows: 4095, num_connected_nodes: { value: 1 } });
  assert.deepEqual(status, { num_flows: '3', max_flows: '4095', num_connected_nodes: 1 });
});

test('protojson filters parse with enum names and refuse unknown fields', () => {
  assert.deepEqual(fromProtoJson(schema.FlowFilter, { verdict: ['DROPPED'], sourcePod: ['shop/'] }), { verdict: [2], source_pod: ['shop/'] });
  assert.throws(() => fromProtoJson(schema.FlowFilter, { verdikt: ['DROPPED'] }), /verdikt: no such field/);
  assert.throws(() => fromProtoJson(schema.FlowFilter, { verdict: ['MAYBE'] }), /unknown Verdict value/);
});

test('a GetFlows request is checked: bad filters and times name the field', () => {
  assert.equal(readRequestOf({ number: 5, follow: true }).follow, true);
  assert.throws(() => readRequestOf({ whitelist: [{ destination_port: ['x'] }] }), (e: unknown) => e instanceof FilterError && e.field === 'whitelist[0].destination_port');
  assert.throws(() => readRequestOf({ since: { seconds: 10, nanos: 0 }, until: { seconds: 5, nanos: 0 } }), (e: unknown) => e instanceof FilterError && e.field === 'until');
});

test('reflection descriptors: one file per .proto with its real name and imports, fully qualified types', () => {
  const files = fileDescriptors(schema.root).map((b) => descriptor.FileDescriptorProto.decode(b) as unknown as {
    name: string; dependency: string[]; publicDependency: number[]; messageType: { name: string; field: { name: string; typeName?: string }[] }[];
  });
  const byName = new Map(files.map((f) => [f.name, f]));
  const observer = byName.get('observer/observer.proto');
  assert.ok(observer !== undefined);
  assert.deepEqual(observer.dependency.slice().sort(), ['flow/flow.proto', 'google/protobuf/field_mask.proto', 'google/protobuf/timestamp.proto', 'google/protobuf/wrappers.proto', 'relay/relay.proto']);
  assert.deepEqual(observer.publicDependency.map((i) => observer.dependency[i]), ['flow/flow.proto']);
  const order = files.map((f) => f.name);
  for (const f of files) for (const d of f.dependency) assert.ok(order.indexOf(d) < order.indexOf(f.name), `${d} before ${f.name}`);
  const req = observer.messageType.find((m) => m.name === 'GetFlowsRequest');
  assert.equal(req?.field.find((x) => x.name === 'whitelist')?.typeName, '.flow.FlowFilter');
});
