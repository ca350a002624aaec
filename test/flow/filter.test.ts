import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SluiceDirection } from '../../src/datapath/generated/abi.js';
import { flowOfEvent } from '../../src/flow/enrich.js';
import { compileFilters, FilterError } from '../../src/flow/filter.js';
import type { Flow, FlowFilter } from '../../src/flow/model.js';
import { ALLOWED, event, VIEW } from './helpers.js';

const ctx = { view: VIEW, nodeName: 'node-1', wallOffsetNs: 0n };
/** The flows every case is run against, by name. */
const FLOWS: Readonly<Record<string, Flow>> = {
  drop: flowOfEvent(event(), ctx), // shop/client → shop/web:80 TCP, ingress, DROPPED
  allow: flowOfEvent(event(ALLOWED), ctx), // same, FORWARDED by rule 7
  egressUdp: flowOfEvent(event({ ...ALLOWED, direction: SluiceDirection.EGRESS, endpointId: 1, protocol: 17, dport: 53, ruleId: 0 }), ctx),
  outside: flowOfEvent(event({ saddr: 0x0b000001, srcIdentity: 2 }), ctx), // 11.0.0.1 (no pod) → web
};

const CASES: ReadonlyArray<{ name: string; allow?: FlowFilter[]; deny?: FlowFilter[]; want: string[] }> = [
  { name: 'no filters: everything', want: ['drop', 'allow', 'egressUdp', 'outside'] },
  { name: 'a value', allow: [{ verdict: [2] }], want: ['drop', 'outside'] },
  { name: 'values of a field OR', allow: [{ verdict: [1, 2] }], want: ['drop', 'allow', 'egressUdp', 'outside'] },
  { name: 'fields of a filter AND', allow: [{ verdict: [1], protocol: ['udp'] }], want: ['egressUdp'] },
  { name: 'filters of a list OR', allow: [{ verdict: [2], source_ip: ['11.0.0.0/8'] }, { protocol: ['UDP'] }], want: ['egressUdp', 'outside'] },
  { name: 'deny list removes', deny: [{ verdict: [2] }], want: ['allow', 'egressUdp'] },
  { name: 'allow and deny', allow: [{ destination_pod: ['shop/web'] }], deny: [{ source_ip: ['11.0.0.1'] }], want: ['drop', 'allow', 'egressUdp'] },
  { name: 'pod is a name prefix in a namespace', allow: [{ source_pod: ['shop/cli'] }], want: ['drop', 'allow', 'egressUdp'] },
  { name: 'namespace/ is the whole namespace', allow: [{ destination_pod: ['shop/'] }], want: ['drop', 'allow', 'egressUdp', 'outside'] },
  { name: 'another namespace matches nothing', allow: [{ destination_pod: ['other/'] }], want: [] },
  { name: 'label selector with and without the source prefix', allow: [{ destination_label: ['k8s:app=web,tier in (front,back)'] }], want: ['drop', 'allow', 'egressUdp', 'outside'] },
  { name: 'label notin', allow: [{ destination_label: ['tier notin (front)'] }], want: [] },
  { name: 'label != and !key (a side without labels has neither)', allow: [{ source_label: ['app!=client,!tier'] }], want: ['outside'] },
  { name: 'identity', allow: [{ source_identity: [2] }], want: ['outside'] },
  { name: 'destination port', allow: [{ destination_port: ['53'] }], want: ['egressUdp'] },
  { name: 'direction', allow: [{ traffic_direction: [2] }], want: ['egressUdp'] },
  { name: 'event type and sub type', allow: [{ event_type: [{ type: 1, match_sub_type: true, sub_type: 133 }] }], want: ['drop', 'outside'] },
  { name: 'drop reason', allow: [{ drop_reason_desc: [133] }], want: ['drop', 'outside'] },
  { name: 'reply false (tracked)', allow: [{ reply: [false] }], want: ['drop', 'allow', 'egressUdp', 'outside'] },
  { name: 'TCP flags: every flag asked for is set', allow: [{ tcp_flags: [{ SYN: true }] }], deny: [{ tcp_flags: [{ SYN: true, ACK: true }] }], want: ['drop', 'allow', 'outside'] },
  { name: 'node name glob', allow: [{ node_name: ['node-*'] }], deny: [{ node_name: ['other'] }], want: ['drop', 'allow', 'egressUdp', 'outside'] },
  { name: 'an empty filter matches everything', allow: [{}], want: ['drop', 'allow', 'egressUdp', 'outside'] },
];

for (const c of CASES) {
  test(`filter: ${c.name}`, () => {
    const p = compileFilters(c.allow ?? [], c.deny ?? []);
    assert.deepEqual(Object.entries(FLOWS).filter(([, f]) => p(f)).map(([n]) => n), c.want);
  });
}

test('an invalid filter is a FilterError naming the list, index and field', () => {
  const bad: ReadonlyArray<[FlowFilter[], FlowFilter[], string]> = [
    [[{ source_port: ['http'] }], [], 'whitelist[0].source_port'],
    [[{}], [{ source_ip: ['10.0.0.300'] }], 'blacklist[0].source_ip'],
    [[{ verdict: [1] }, { protocol: ['gre'] }], [], 'whitelist[1].protocol'],
    [[{ destination_label: ['app in web'] }], [], 'whitelist[0].destination_label'],
    [[{ http_method: ['GET'] }], [], 'whitelist[0].http_method'],
  ];
  for (const [allow, deny, field] of bad) {
    assert.throws(() => compileFilters(allow, deny), (e: unknown) => e instanceof FilterError && e.field === field && e.code === 'invalid-filter', field);
  }
});
