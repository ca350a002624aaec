/**
 * A client of the Observer API (the agent's or any Hubble server): GetFlows
 * as a stream of decoded responses, ServerStatus as one answer. Addresses:
 * "unix:///path" (or a bare absolute path), or "host:port" (TLS when a CA or
 * `tls` is given).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import type { GetFlowsRequestObject } from '../wire/messages.js';
import { decodeMessage, encodeMessage, observerSchema, type ObserverSchema } from '../wire/schema.js';

export interface ClientOptions {
  readonly server: string;
  /** TCP only: use TLS (with this CA file when given, else the system roots). */
  readonly tls?: { readonly caFile?: string; readonly serverName?: string };
}

/** observer.GetFlowsRequest as a plain object (proto names). */
export type GetFlowsRequestInput = GetFlowsRequestObject;

/** Decoded observer.GetFlowsResponse (proto names). */
export type GetFlowsResponseObject = Readonly<Record<string, unknown>>;

export interface FlowCall {
  /** Cancels the call (the stream ends with CANCELLED, which `done` treats as a normal end). */
  cancel(): void;
  /** Resolves at the end of the stream; rejects with the gRPC error otherwise. */
  readonly done: Promise<void>;
}

export function grpcTarget(server: string): string {
  if (server.startsWith('/')) return `unix://${server}`;
  return server;
}

export class ObserverClient {
  private readonly client: grpc.Client;
  private readonly schema: ObserverSchema;

  constructor(opts: ClientOptions) {
    this.schema = observerSchema();
    const creds = opts.tls !== undefined
      ? grpc.credentials.createSsl(opts.tls.caFile !== undefined ? readFileSync(opts.tls.caFile) : null)
      : grpc.credentials.createInsecure();
    const options = opts.tls?.serverName !== undefined ? { 'grpc.ssl_target_name_override': opts.tls.serverName } : {};
    this.client = new grpc.Client(grpcTarget(opts.server), creds, options);
  }

  getFlows(req: GetFlowsRequestInput, onResponse: (r: GetFlowsResponseObject) => void): FlowCall {
    const { GetFlowsRequest, GetFlowsResponse } = this.schema;
    const call = this.client.makeServerStreamRequest(
      '/observer.Observer/GetFlows',
      (v: GetFlowsRequestInput) => encodeMessage(GetFlowsRequest, v),
      (b: Buffer) => decodeMessage<GetFlowsResponseObject>(GetFlowsResponse, b),
      req,
    );
    let cancelled = false;
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: GetFlowsResponseObject) => onResponse(r));
      call.on('error', (e: grpc.ServiceError) => (cancelled && e.code === grpc.status.CANCELLED ? resolve() : reject(e)));
      call.on('end', () => resolve());
    });
    return { cancel: () => { cancelled = true; call.cancel(); }, done };
  }

  unary<T>(method: 'ServerStatus' | 'GetNodes' | 'GetNamespaces', timeoutMs = 5000): Promise<T> {
    const req: protobuf.Type = this.schema[`${method === 'ServerStatus' ? 'ServerStatus' : method}Request`];
    const res: protobuf.Type = this.schema[`${method === 'ServerStatus' ? 'ServerStatus' : method}Response`];
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/observer.Observer/${method}`,
        (v: object) => encodeMessage(req, v),
        (b: Buffer) => decodeMessage<T>(res, b),
        {},
        { deadline: Date.now() + timeoutMs },
        (err, value) => (err !== null ? reject(err) : resolve(value as T)),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
