import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowOfEvent } from '../../src/flow/enrich.js';
import { compactLine, decisionOf, lostLine, tableRow } from '../../src/flow/print.js';
import { LostEventSource } from '../../src/flow/model.js';
import { ALLOWED, event, VIEW } from './helpers.js';

const ctx = { view: VIEW, nodeName: 'n', wallOffsetNs: 0n };

test('every drop line names what decided it', () => {
  assert.equal(decisionOf(flowOfEvent(event(), ctx)), 'no rule allowed it');
  assert.equal(decisionOf(flowOfEvent(event({ ruleId: 7 }), ctx)), 'denied by shop/web-policy ingress[0]');
  assert.equal(decisionOf(flowOfEvent(event(ALLOWED), ctx)), 'allowed by shop/web-policy ingress[0]');
  const line = compactLine(flowOfEvent(event(), ctx), { color: false });
  assert.match(line, /^1970-01-01T00:00:01Z: shop\/client:40000 \(ID:300\) -> shop\/web:80 \(ID:301\) drop ingress DROPPED \(POLICY_DENIED\) TCP Flags: SYN no rule allowed it$/);
  assert.ok(compactLine(flowOfEvent(event(), ctx), { color: true }).includes('\u001b[31mDROPPED'), 'red on a terminal');
});

test('replies point back; table rows carry the decision; lost events say how many', () => {
  const reply = flowOfEvent(event({ ...ALLOWED, flags: 32 }), ctx);
  assert.match(compactLine(reply, { color: false }), /shop\/web:80 \(ID:301\) <- shop\/client:40000/);
  const row = tableRow(flowOfEvent(event(ALLOWED), ctx));
  assert.equal(row.length, 6);
  assert.equal(row[5], 'TCP Flags: SYN; allowed by shop/web-policy ingress[0]');
  assert.equal(lostLine({ source: LostEventSource.PERF_EVENT_RING_BUFFER, num_events_lost: 4, cpu: { value: 1 } }), 'EVENTS LOST: PERF_EVENT_RING_BUFFER lost 4 events on CPU 1');
});
