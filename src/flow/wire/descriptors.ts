/**
 * FileDescriptorProtos of the observer API for server reflection: one per
 * .proto file, named by its path under proto/ ("flow/flow.proto"), with its
 * real imports and fully qualified type names, so reflection clients
 * (grpcurl, `hubble reflect`) resolve every reference. The well-known types
 * protobufjs bundles get their canonical files (google/protobuf/*.proto).
 */
import { relative } from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { PROTO_DIR } from './schema.js';

const WELL_KNOWN_FILES: Readonly<Record<string, string>> = {
  'google.protobuf.Timestamp': 'google/protobuf/timestamp.proto',
  'google.protobuf.FieldMask': 'google/protobuf/field_mask.proto',
  'google.protobuf.Any': 'google/protobuf/any.proto',
  'google.protobuf.Duration': 'google/protobuf/duration.proto',
  'google.protobuf.Empty': 'google/protobuf/empty.proto',
};
const WRAPPERS = 'google/protobuf/wrappers.proto';

/** Descriptor type codes (google/protobuf/descriptor.proto FieldDescriptorProto.Type). */
const SCALAR_TYPES: Readonly<Record<string, number>> = {
  double: 1, float: 2, int64: 3, uint64: 4, int32: 5, fixed64: 6, fixed32: 7, bool: 8, string: 9,
  bytes: 12, uint32: 13, sfixed32: 15, sfixed64: 16, sint32: 17, sint64: 18,
};

interface FileParts {
  name: string;
  pkg: string;
  messages: protobuf.Type[];
  enums: protobuf.Enum[];
  services: protobuf.Service[];
  deps: Set<string>;
  publicDeps: Set<string>;
}

/** The file an object of the API lives in. */
function fileOf(obj: protobuf.ReflectionObject, protoDir: string): string {
  const full = obj.fullName.slice(1);
  if (full.startsWith('google.protobuf.')) return WELL_KNOWN_FILES[full] ?? WRAPPERS;
  if (obj.filename === null) throw new Error(`reflection: no file for ${full}`);
  return relative(protoDir, obj.filename);
}

/** Encoded FileDescriptorProtos of every file that defines something under `root`, dependencies first. */
export function fileDescriptors(root: protobuf.Root, protoDir: string = PROTO_DIR, publicImports: Readonly<Record<string, readonly string[]>> = { 'observer/observer.proto': ['flow/flow.proto'] }): Buffer[] {
  const files = new Map<string, FileParts>();
  const partsOf = (obj: protobuf.ReflectionObject): FileParts => {
    const name = fileOf(obj, protoDir);
    let p = files.get(name);
    if (p === undefined) {
      p = { name, pkg: (obj.parent?.fullName ?? '').slice(1), messages: [], enums: [], services: [], deps: new Set(), publicDeps: new Set() };
      files.set(name, p);
    }
    return p;
  };
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) partsOf(obj).messages.push(obj);
      else if (obj instanceof protobuf.Enum) partsOf(obj).enums.push(obj);
      else if (obj instanceof protobuf.Service) partsOf(obj).services.push(obj);
      else if (obj instanceof protobuf.Namespace) visit(obj);
    }
  };
  visit(root);
  const out: Buffer[] = [];
  const done = new Set<string>();
  const emit = (p: FileParts): void => {
    if (done.has(p.name)) return;
    done.add(p.name);
    const proto = fileProto(p, protoDir, publicImports[p.name] ?? []);
    for (const d of proto.dependency) {
      const dep = files.get(d);
      if (dep !== undefined) emit(dep);
    }
    out.push(Buffer.from(descriptor.FileDescriptorProto.encode(descriptor.FileDescriptorProto.fromObject(proto)).finish()));
  };
  for (const p of files.values()) emit(p);
  return out;
}

interface PlainFile {
  name: string;
  package: string;
  dependency: string[];
  publicDependency: number[];
  messageType: object[];
  enumType: object[];
  service: object[];
  syntax: string;
}

function fileProto(p: FileParts, protoDir: string, publicImports: readonly string[]): PlainFile {
  const deps = new Set<string>(publicImports);
  const ref = (t: protobuf.ReflectionObject): string => {
    const f = fileOf(t, protoDir);
    if (f !== p.name) deps.add(f);
    return t.fullName;
  };
  const messageType = p.messages.map((m) => messageProto(m, ref));
  const service = p.services.map((s) => ({
    name: s.name,
    method: s.methodsArray.map((m) => {
      m.resolve();
      return {
        name: m.name,
        inputType: ref(m.resolvedRequestType as protobuf.Type),
        outputType: ref(m.resolvedResponseType as protobuf.Type),
        clientStreaming: m.requestStream === true,
        serverStreaming: m.responseStream === true,
      };
    }),
  }));
  const enumType = p.enums.map(enumProto);
  const dependency = [...deps].sort();
  return {
    name: p.name,
    package: p.pkg,
    dependency,
    publicDependency: publicImports.map((d) => dependency.indexOf(d)).filter((i) => i >= 0),
    messageType,
    enumType,
    service,
    syntax: 'proto3',
  };
}

function enumProto(e: protobuf.Enum): object {
  return { name: e.name, value: Object.entries(e.values).map(([name, number]) => ({ name, number })) };
}

function messageProto(m: protobuf.Type, ref: (t: protobuf.ReflectionObject) => string): object {
  const oneofs = m.oneofsArray;
  return {
    name: m.name,
    field: m.fieldsArray.map((f) => {
      f.resolve();
      const resolved = f.resolvedType;
      const type = resolved instanceof protobuf.Enum ? 14 : resolved instanceof protobuf.Type ? 11 : SCALAR_TYPES[f.type];
      if (type === undefined) throw new Error(`reflection: unsupported field type ${f.type} of ${m.fullName}.${f.name}`);
      const oneofIndex = f.partOf !== null ? oneofs.indexOf(f.partOf) : -1;
      return {
        name: f.name,
        number: f.id,
        label: f.repeated ? 3 : 1,
        type,
        ...(resolved !== null ? { typeName: ref(resolved) } : {}),
        jsonName: jsonName(f.name),
        ...(oneofIndex >= 0 ? { oneofIndex } : {}),
      };
    }),
    oneofDecl: oneofs.map((o) => ({ name: o.name })),
    reservedRange: (m.reserved ?? []).filter((r): r is number[] => Array.isArray(r)).map(([start, end]) => ({ start, end: (end ?? start ?? 0) + 1 })),
    nestedType: m.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type).map((n) => messageProto(n, ref)),
    enumType: m.nestedArray.filter((n): n is protobuf.Enum => n instanceof protobuf.Enum).map(enumProto),
  };
}

/** protoc's json_name: underscores dropped, the next letter upper-cased. */
function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
