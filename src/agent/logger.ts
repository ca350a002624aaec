/**
 * Structured JSON logs (pino) on stdout, one object per line, with the
 * component in every line. Modules take a Logger; tests pass one writing to
 * a buffer (or level "silent").
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { component: 'sluice-agent', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names, not numbers: log readers grep for "warn".
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
