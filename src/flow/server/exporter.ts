/**
 * The flow exporter: flows that pass its allow and deny lists, written as
 * Hubble's exporter JSON lines (observer.ExportEvent in protojson with proto
 * names) to a file, rotated by size: file → file.1 → … → file.N, the oldest
 * dropped. Lines are buffered and written together once per event-loop turn,
 * so a burst of flows costs one write, not one per flow.
 */
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { FlowPredicate } from '../filter.js';
import type { Flow } from '../model.js';
import { toProtoJson } from '../wire/json.js';
import type { ObserverSchema } from '../wire/schema.js';

export interface ExporterOptions {
  readonly file: string;
  readonly maxSizeBytes: number;
  readonly maxBackups: number;
  readonly predicate: FlowPredicate;
  readonly nodeName: string;
  readonly schema: ObserverSchema;
  /** Called when a write fails (the line is dropped and counted). */
  readonly onError?: (e: Error) => void;
}

export class FlowExporter {
  private fd: number;
  private size: number;
  private pending: string[] = [];
  private scheduled = false;
  /** Lines dropped because a write failed. */
  failed = 0;
  written = 0;

  constructor(private readonly opts: ExporterOptions) {
    this.fd = openSync(opts.file, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  /** Queues the flow's line when the filters pass it. */
  export(flow: Flow): void {
    if (!this.opts.predicate(flow)) return;
    const line = JSON.stringify(toProtoJson(this.opts.schema.ExportEvent, { flow, node_name: this.opts.nodeName, time: flow.time }));
    this.pending.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    this.scheduled = false;
    const lines = this.pending;
    this.pending = [];
    let chunk = '';
    for (const line of lines) {
      const bytes = Buffer.byteLength(line) + 1;
      if (this.size + Buffer.byteLength(chunk) + bytes > this.opts.maxSizeBytes && (this.size > 0 || chunk !== '')) {
        this.write(chunk);
        chunk = '';
        this.rotate();
      }
      chunk += `${line}\n`;
    }
    if (chunk !== '') this.write(chunk);
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private write(chunk: string): void {
    if (chunk === '') return;
    const buf = Buffer.from(chunk);
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off);
      this.size += buf.length;
      this.written += chunk.split('\n').length - 1;
    } catch (e) {
      this.failed += chunk.split('\n').length - 1;
      this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private rotate(): void {
    closeSync(this.fd);
    const { file, maxBackups } = this.opts;
    if (maxBackups === 0) rmSync(file, { force: true });
    else {
      rmSync(`${file}.${maxBackups}`, { force: true });
      for (let i = maxBackups - 1; i >= 1; i--) {
        try { renameSync(`${file}.${i}`, `${file}.${i + 1}`); } catch { /* not there yet */ }
      }
      renameSync(file, `${file}.1`);
    }
    this.fd = openSync(file, 'a', 0o640);
    this.size = 0;
  }
}
