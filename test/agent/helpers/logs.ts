/** A pino logger whose JSON lines a test can read back. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../src/agent/logger.js';

export interface CapturedLog {
  readonly log: Logger;
  /** Parsed lines so far. */
  lines(): Record<string, unknown>[];
  /** Lines whose msg contains `text`. */
  find(text: string): Record<string, unknown>[];
}

export function captureLog(level: 'trace' | 'debug' | 'info' = 'debug'): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger(level, sink);
  return {
    log,
    lines: () => lines,
    find: (text) => lines.filter((l) => typeof l['msg'] === 'string' && l['msg'].includes(text)),
  };
}
