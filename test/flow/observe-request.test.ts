import assert from 'node:assert/strict';
import { test } from 'node:test';
import { observeRequest, ObserveOptionError, parseTime } from '../../src/flow/observe-request.js';

const NOW = Date.parse('2026-12-07T04:00:00Z');

test('defaults like hubble observe: the last 20, or new flows only when following', () => {
  assert.deepEqual(observeRequest({}, NOW), { number: 20, first: false, follow: false, whitelist: [], blacklist: [] });
  assert.equal(observeRequest({ follow: true }, NOW).number, 0);
  assert.equal(observeRequest({ follow: true, last: 5 }, NOW).number, 5);
  assert.deepEqual([observeRequest({ first: 3 }, NOW).number, observeRequest({ first: 3 }, NOW).first], [3, true]);
});

test('either-side options give a source filter and a destination filter; the others narrow both', () => {
  const r = observeRequest({ pod: ['web'], namespace: ['shop'], verdict: ['dropped'], type: ['drop'], port: ['80'] }, NOW);
  assert.deepEqual(r.whitelist, [
    { verdict: [2], event_type: [{ type: 1 }], source_pod: ['shop/web'], source_port: ['80'] },
    { verdict: [2], event_type: [{ type: 1 }], destination_pod: ['shop/web'], destination_port: ['80'] },
  ]);
  assert.deepEqual(observeRequest({ namespace: ['shop'] }, NOW).whitelist, [{ source_pod: ['shop/'] }, { destination_pod: ['shop/'] }]);
  assert.deepEqual(observeRequest({ fromPod: ['a'], toPod: ['other/b'], protocol: ['tcp'] }, NOW).whitelist,
    [{ protocol: ['tcp'], source_pod: ['default/a'], destination_pod: ['other/b'] }]);
  assert.deepEqual(observeRequest({ type: ['policy-verdict', 'trace'] }, NOW).whitelist, [{ event_type: [{ type: 5 }, { type: 4 }] }]);
});

test('times: RFC 3339 or a duration ago; bad options name the option', () => {
  assert.deepEqual(parseTime('5m', '--since', NOW), { seconds: NOW / 1000 - 300, nanos: 0 });
  assert.deepEqual(parseTime('2026-12-07T03:00:00.5Z', '--since', NOW), { seconds: NOW / 1000 - 3600, nanos: 500_000_000 });
  const bad: [object, string][] = [
    [{ verdict: ['maybe'] }, '--verdict'], [{ type: ['l7'] }, '--type'], [{ port: ['http'] }, '--port'],
    [{ protocol: ['gre'] }, '--protocol'], [{ since: 'yesterday' }, '--since'], [{ first: 1, follow: true }, '--first'],
  ];
  for (const [o, option] of bad) assert.throws(() => observeRequest(o, NOW), (e: unknown) => e instanceof ObserveOptionError && e.option === option, option);
});
