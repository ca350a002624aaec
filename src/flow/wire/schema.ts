/**
 * Hubble's observer API as protobufjs types, loaded from proto/ (the subset
 * Sluice writes, with Hubble's names and numbers). Field names stay as the
 * .proto spells them (keepCase), so the model's plain objects (model.ts)
 * encode directly. Reads the .proto files once per process.
 */
import { fileURLToPath } from 'node:url';
import { isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';

/** proto/ at the repository root (from dist/src/flow/wire or src/flow/wire). */
export const PROTO_DIR = fileURLToPath(new URL('../../../../proto/', import.meta.url).href.replace('/dist/proto/', '/proto/'));

/** The files of the API, in dependency order (imports first). */
export const PROTO_FILES = ['relay/relay.proto', 'flow/flow.proto', 'observer/observer.proto', 'grpc/health/v1/health.proto'] as const;

export interface ObserverSchema {
  readonly root: protobuf.Root;
  readonly GetFlowsRequest: protobuf.Type;
  readonly GetFlowsResponse: protobuf.Type;
  readonly ServerStatusRequest: protobuf.Type;
  readonly ServerStatusResponse: protobuf.Type;
  readonly GetNodesRequest: protobuf.Type;
  readonly GetNodesResponse: protobuf.Type;
  readonly GetNamespacesRequest: protobuf.Type;
  readonly GetNamespacesResponse: protobuf.Type;
  readonly ExportEvent: protobuf.Type;
  readonly Flow: protobuf.Type;
  readonly FlowFilter: protobuf.Type;
  readonly Observer: protobuf.Service;
}

let cached: ObserverSchema | undefined;

/** Loads (once) and resolves the observer API. */
export function observerSchema(protoDir: string = PROTO_DIR): ObserverSchema {
  if (cached !== undefined && protoDir === PROTO_DIR) return cached;
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string) =>
    (target.startsWith('google/protobuf/') || isAbsolute(target) ? target : join(protoDir, target));
  root.loadSync(PROTO_FILES.map((f) => join(protoDir, f)), { keepCase: true });
  root.resolveAll();
  const t = (name: string): protobuf.Type => root.lookupType(name);
  const schema: ObserverSchema = {
    root,
    GetFlowsRequest: t('observer.GetFlowsRequest'),
    GetFlowsResponse: t('observer.GetFlowsResponse'),
    ServerStatusRequest: t('observer.ServerStatusRequest'),
    ServerStatusResponse: t('observer.ServerStatusResponse'),
    GetNodesRequest: t('observer.GetNodesRequest'),
    GetNodesResponse: t('observer.GetNodesResponse'),
    GetNamespacesRequest: t('observer.GetNamespacesRequest'),
    GetNamespacesResponse: t('observer.GetNamespacesResponse'),
    ExportEvent: t('observer.ExportEvent'),
    Flow: t('flow.Flow'),
    FlowFilter: t('flow.FlowFilter'),
    Observer: root.lookupService('observer.Observer'),
  };
  if (protoDir === PROTO_DIR) cached = schema;
  return schema;
}

/** Encodes a plain object (proto field names) as `type`. */
export function encodeMessage(type: protobuf.Type, value: object): Buffer {
  return Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish());
}

/**
 * Decodes `type` into a plain object with proto field names: enums and
 * 64-bit integers as numbers, repeated fields as arrays, absent fields absent.
 */
export function decodeMessage<T>(type: protobuf.Type, bytes: Uint8Array): T {
  return type.toObject(type.decode(bytes), { longs: Number, enums: Number, arrays: true, defaults: false }) as T;
}
