/**
 * The two API-server calls an informer makes, as a port: a paginated list
 * and a watch stream. The production implementation (api-transport.ts)
 * speaks HTTP to the API server; tests substitute a scripted fake, so the
 * informer's list/watch/relist/backoff logic is tested without a server.
 */

/** One page of a list response, objects still raw JSON. */
export interface ListPage {
  readonly items: readonly unknown[];
  /** metadata.resourceVersion of the list: where a watch resumes. */
  readonly resourceVersion: string;
  /** metadata.continue when the server has more pages. */
  readonly continueToken?: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  readonly type: WatchEventType;
  /** The object, or a meta/v1 Status for ERROR. */
  readonly object: unknown;
}

export interface WatchCallbacks {
  onEvent(event: WatchEvent): void;
  /** The stream ended: null when the server closed it normally, else why it failed. Called at most once. */
  onClose(error: Error | null): void;
}

export interface WatchHandle {
  /** Ends the stream; no callback fires afterwards. Idempotent. */
  stop(): void;
}

export type Query = Readonly<Record<string, string>>;

export interface KubeTransport {
  list(path: string, query: Query): Promise<ListPage>;
  watch(path: string, query: Query, callbacks: WatchCallbacks): WatchHandle;
}

/** An error status from the API server (HTTP status, or the code of a watch ERROR event). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    /** HTTP status code: 410 = resourceVersion too old ("Expired"/"Gone"). */
    readonly status: number,
    message: string,
    /** meta/v1 Status reason, e.g. "Expired", "Forbidden". */
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** True for "your resourceVersion is too old; list again". */
export function isExpired(e: unknown): boolean {
  if (e instanceof KubeApiError) return e.status === 410;
  return typeof e === 'object' && e !== null && 'statusCode' in e && e.statusCode === 410;
}

/** Reads a meta/v1 Status object (a watch ERROR event's object, or an error body) into a KubeApiError. */
export function statusToError(status: unknown, fallbackCode: number, context: string): KubeApiError {
  const s = typeof status === 'object' && status !== null ? (status as Record<string, unknown>) : {};
  const code = typeof s['code'] === 'number' ? s['code'] : fallbackCode;
  const reason = typeof s['reason'] === 'string' ? s['reason'] : undefined;
  const message = typeof s['message'] === 'string' ? s['message'] : `HTTP ${code}`;
  return new KubeApiError(code, `${context}: ${message}`, reason);
}
