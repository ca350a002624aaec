import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { flowOfEvent } from '../../src/flow/enrich.js';
import { compileFilters } from '../../src/flow/filter.js';
import { FlowExporter } from '../../src/flow/server/exporter.js';
import { observerSchema } from '../../src/flow/wire/schema.js';
import { ALLOWED, event, VIEW } from './helpers.js';

test('the exporter writes filtered Hubble JSON lines and rotates by size, keeping N backups', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-hf-exporter-'));
  try {
    const file = join(dir, 'events.log');
    const ex = new FlowExporter({
      file, maxSizeBytes: 4096, maxBackups: 2, nodeName: 'n1', schema: observerSchema(),
      predicate: compileFilters([{ verdict: [2] }], [{ source_port: ['40001'] }]),
    });
    const ctx = { view: VIEW, nodeName: 'n1', wallOffsetNs: 0n };
    for (let i = 0; i < 60; i++) {
      ex.export(flowOfEvent(event({ sport: 40000 + i }), ctx)); // dropped: exported unless port 40001
      ex.export(flowOfEvent(event({ ...ALLOWED, sport: 40000 + i }), ctx)); // forwarded: filtered out
      if (i % 7 === 0) ex.flush();
    }
    ex.close();
    const names = readdirSync(dir).sort();
    assert.deepEqual(names, ['events.log', 'events.log.1', 'events.log.2']);
    for (const n of names) assert.ok(statSync(join(dir, n)).size <= 4096, `${n} within the size`);
    const lines = names.flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter((l) => l !== ''));
    assert.ok(lines.length > 0 && lines.length < 59, 'older files were dropped');
    for (const l of lines) {
      const e = JSON.parse(l) as { flow: { verdict: string; l4: { TCP: { source_port: number } } }; node_name: string; time: string };
      assert.equal(e.flow.verdict, 'DROPPED');
      assert.notEqual(e.flow.l4.TCP.source_port, 40001);
      assert.equal(e.node_name, 'n1');
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }
    assert.equal(ex.written, 59, 'every passing flow was written once');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
