/**
 * Observer API requests and responses as the model: a decoded
 * GetFlowsRequest checked and turned into a ReadRequest (its filters
 * compiled), and a FlowEvent as a GetFlowsResponse. Pure.
 */
import { compileFilters, FilterError } from '../filter.js';
import type { FlowEvent, FlowFilter, Timestamp } from '../model.js';
import type { ReadRequest } from '../observer.js';

/** observer.GetFlowsRequest as decodeMessage gives it (proto names, numbers). */
export interface GetFlowsRequestObject {
  readonly number?: number;
  readonly first?: boolean;
  readonly follow?: boolean;
  readonly whitelist?: readonly FlowFilter[];
  readonly blacklist?: readonly FlowFilter[];
  readonly since?: Timestamp;
  readonly until?: Timestamp;
}

/** The request as a read; throws FilterError (INVALID_ARGUMENT) naming the bad field. */
export function readRequestOf(req: GetFlowsRequestObject): ReadRequest {
  const number = req.number ?? 0;
  if (!Number.isSafeInteger(number) || number < 0) throw new FilterError('number', `${number} is not a flow count`);
  checkTime(req.since, 'since');
  checkTime(req.until, 'until');
  if (req.since !== undefined && req.until !== undefined
    && (req.since.seconds > req.until.seconds || (req.since.seconds === req.until.seconds && req.since.nanos > req.until.nanos))) {
    throw new FilterError('until', 'is before since');
  }
  if (req.first === true && req.follow === true) throw new FilterError('first', 'cannot be combined with follow');
  return {
    number,
    first: req.first === true,
    follow: req.follow === true,
    ...(req.since !== undefined ? { since: req.since } : {}),
    ...(req.until !== undefined ? { until: req.until } : {}),
    predicate: compileFilters(req.whitelist ?? [], req.blacklist ?? []),
  };
}

function checkTime(t: Timestamp | undefined, field: string): void {
  if (t === undefined) return;
  if (!Number.isSafeInteger(t.seconds ?? 0) || (t.nanos ?? 0) < 0 || (t.nanos ?? 0) > 999_999_999) throw new FilterError(field, 'is not a valid timestamp');
}

/** A stream item as an observer.GetFlowsResponse object. */
export function responseOf(e: FlowEvent, nodeName: string): Record<string, unknown> {
  if (e.kind === 'flow') return { flow: e.flow, node_name: nodeName, time: e.flow.time };
  return { lost_events: e.lost, node_name: nodeName, time: e.time };
}
