/**
 * The observer gRPC server: observer.Observer (GetFlows, ServerStatus,
 * GetNodes, GetNamespaces) with Hubble's wire format, grpc.health.v1
 * answering SERVING for "" and "hubble.server.Observer", and server
 * reflection (v1 and v1alpha) with the real file descriptors. Listens on a
 * unix socket, and on TCP with TLS when given a certificate.
 *
 * A GetFlows stream writes while the transport takes it: when grpc-js
 * reports its buffer full the stream waits for 'drain' and the observer's
 * ring moves on without it; what the ring overwrote before the client caught
 * up reaches it as a LostEvent (HUBBLE_RING_BUFFER) with the count.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type protobuf from 'protobufjs';
import { FilterError } from '../filter.js';
import type { FlowObserver } from '../observer.js';
import { fileDescriptors } from '../wire/descriptors.js';
import { readRequestOf, responseOf, type GetFlowsRequestObject } from '../wire/messages.js';
import { decodeMessage, encodeMessage, observerSchema, type ObserverSchema } from '../wire/schema.js';

export const HUBBLE_HEALTH_SERVICE = 'hubble.server.Observer';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Client CA: when set, clients must present a certificate it signed (mTLS). */
  readonly clientCaFile?: string;
}

export interface ObserverServerOptions {
  readonly observer: FlowObserver;
  /** Reported by ServerStatus and GetNodes. */
  readonly version: string;
  readonly log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface ListenTarget {
  /** A unix socket path, or host:port for TCP. */
  readonly address: string;
  /** TCP only: serve TLS with these files (a TCP target without TLS is refused). */
  readonly tls?: TlsFiles;
}

type Handler = grpc.UntypedHandleCall;

export class ObserverGrpcServer {
  private readonly server = new grpc.Server({ 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  private readonly schema: ObserverSchema;
  private readonly streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  private readonly socketPaths: string[] = [];

  constructor(private readonly opts: ObserverServerOptions) {
    this.schema = observerSchema();
    this.server.addService(this.definition(), this.handlers());
    new HealthImplementation({ '': 'SERVING', [HUBBLE_HEALTH_SERVICE]: 'SERVING' }).addToServer(this.server);
    const pkg = { 'observer.Observer': { fileDescriptorProtos: fileDescriptors(this.schema.root) } };
    new ReflectionService(pkg as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(this.server);
  }

  /** Binds every target; resolves with the bound addresses ("unix:/path", "host:port" with the real port). */
  async listen(targets: readonly ListenTarget[]): Promise<string[]> {
    const bound: string[] = [];
    for (const t of targets) {
      if (t.address.startsWith('/')) {
        mkdirSync(dirname(t.address), { recursive: true, mode: 0o755 });
        rmSync(t.address, { force: true });
        await this.bind(`unix:${t.address}`, grpc.ServerCredentials.createInsecure());
        chmodSync(t.address, 0o660);
        this.socketPaths.push(t.address);
        bound.push(`unix:${t.address}`);
      } else {
        if (t.tls === undefined) throw new Error(`observer listen ${t.address}: TCP needs TLS (certFile, keyFile)`);
        const creds = grpc.ServerCredentials.createSsl(
          t.tls.clientCaFile !== undefined ? readFileSync(t.tls.clientCaFile) : null,
          [{ cert_chain: readFileSync(t.tls.certFile), private_key: readFileSync(t.tls.keyFile) }],
          t.tls.clientCaFile !== undefined,
        );
        const port = await this.bind(t.address, creds);
        bound.push(`${t.address.slice(0, t.address.lastIndexOf(':'))}:${port}`);
      }
    }
    return bound;
  }

  /** Ends every stream, stops accepting, removes the socket files. */
  async close(): Promise<void> {
    for (const s of this.streams) s.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, 2000);
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
    for (const p of this.socketPaths) rmSync(p, { force: true });
  }

  private bind(address: string, creds: grpc.ServerCredentials): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, creds, (err, port) => (err !== null ? reject(err) : resolve(port)));
    });
  }

  private definition(): grpc.ServiceDefinition {
    const s = this.schema;
    const method = (name: string, req: protobuf.Type, res: protobuf.Type, stream: boolean): grpc.MethodDefinition<unknown, unknown> => ({
      path: `/observer.Observer/${name}`,
      originalName: name,
      requestStream: false,
      responseStream: stream,
      requestSerialize: (v: unknown) => encodeMessage(req, v as object),
      requestDeserialize: (b: Buffer) => decodeMessage(req, b),
      responseSerialize: (v: unknown) => encodeMessage(res, v as object),
      responseDeserialize: (b: Buffer) => decodeMessage(res, b),
    });
    return {
      GetFlows: method('GetFlows', s.GetFlowsRequest, s.GetFlowsResponse, true),
      ServerStatus: method('ServerStatus', s.ServerStatusRequest, s.ServerStatusResponse, false),
      GetNodes: method('GetNodes', s.GetNodesRequest, s.GetNodesResponse, false),
      GetNamespaces: method('GetNamespaces', s.GetNamespacesRequest, s.GetNamespacesResponse, false),
    };
  }

  private handlers(): Record<string, Handler> {
    const { observer, version } = this.opts;
    const unary = (answer: () => object): grpc.handleUnaryCall<unknown, unknown> => (_call, cb) => {
      try {
        cb(null, answer());
      } catch (e) {
        cb({ code: grpc.status.INTERNAL, details: e instanceof Error ? e.message : String(e) });
      }
    };
    return {
      GetFlows: (call: grpc.ServerWritableStream<unknown, unknown>) => this.getFlows(call),
      ServerStatus: unary(() => {
        const st = observer.status();
        return {
          num_flows: st.numFlows,
          max_flows: st.maxFlows,
          seen_flows: st.seenFlows,
          uptime_ns: Number(st.uptimeNs),
          num_connected_nodes: { value: 1 },
          num_unavailable_nodes: { value: 0 },
          version,
          flows_rate: st.flowsRate,
        };
      }),
      GetNodes: unary(() => {
        const st = observer.status();
        return {
          nodes: [{
            name: observer.nodeName, version, state: 1, uptime_ns: Number(st.uptimeNs),
            num_flows: st.numFlows, max_flows: st.maxFlows, seen_flows: st.seenFlows,
          }],
        };
      }),
      GetNamespaces: unary(() => ({ namespaces: observer.namespaces().map((namespace) => ({ cluster: '', namespace })) })),
    };
  }

  private getFlows(call: grpc.ServerWritableStream<unknown, unknown>): void {
    const { observer } = this.opts;
    let read;
    try {
      read = readRequestOf(call.request as GetFlowsRequestObject);
    } catch (e) {
      const details = e instanceof FilterError ? `invalid filter: ${e.message}` : `invalid request: ${e instanceof Error ? e.message : String(e)}`;
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details, metadata: new grpc.Metadata() });
      return;
    }
    const reader = observer.reader(read);
    this.streams.add(call);
    let done = false;
    let cancelWait: (() => void) | undefined;
    const finish = (): void => {
      done = true;
      cancelWait?.();
      this.streams.delete(call);
    };
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
    const pump = (): void => {
      cancelWait = undefined;
      while (!done) {
        const r = reader.next();
        if (r === 'end') {
          finish();
          call.end();
          return;
        }
        if (r === 'wait') {
          cancelWait = reader.onData(pump);
          return;
        }
        if (!call.write(responseOf(r, observer.nodeName))) {
          call.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }
}
