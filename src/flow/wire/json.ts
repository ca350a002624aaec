/**
 * Hubble's JSON (Go protojson with proto field names, as the exporter and
 * `hubble observe -o json` write it): enums by name, 64-bit integers as
 * strings, wrapper types as their bare value, Timestamps in RFC 3339, zero
 * values and empty lists left out. Walks the protobufjs types, so every
 * message of the API gets the same treatment.
 */
import protobuf from 'protobufjs';
import { formatTimestamp, parseTimestamp, type Timestamp } from '../model.js';

const WRAPPERS = new Set(['BoolValue', 'UInt32Value', 'Int32Value', 'UInt64Value', 'Int64Value', 'StringValue', 'DoubleValue', 'FloatValue', 'BytesValue']);
const LONGS = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function isWellKnown(t: protobuf.Type, name: string): boolean {
  return t.fullName === `.google.protobuf.${name}`;
}

/** A plain object of `type` (proto field names) as protojson. */
export function toProtoJson(type: protobuf.Type, value: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const v = value[field.name];
    if (v === undefined || v === null) continue;
    if (field.repeated) {
      if (!Array.isArray(v) || v.length === 0) continue;
      out[field.name] = v.map((x: unknown) => fieldJson(field, x));
      continue;
    }
    if (field.partOf === null && field.resolvedType === null && isZero(v)) continue;
    if (field.resolvedType instanceof protobuf.Enum && v === 0 && field.partOf === null) continue;
    out[field.name] = fieldJson(field, v);
  }
  return out;
}

function isZero(v: unknown): boolean {
  return v === 0 || v === '' || v === false || v === 0n;
}

function fieldJson(field: protobuf.Field, v: unknown): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return typeof v === 'number' ? (t.valuesById[v] ?? v) : v;
  if (t instanceof protobuf.Type) {
    const obj = v as Record<string, unknown>;
    if (isWellKnown(t, 'Timestamp')) return formatTimestamp({ seconds: Number(obj.seconds ?? 0), nanos: Number(obj.nanos ?? 0) });
    if (t.fullName.startsWith('.google.protobuf.') && WRAPPERS.has(t.name)) return scalarJson(t.fields.value?.type ?? '', obj.value);
    return toProtoJson(t, obj);
  }
  return scalarJson(field.type, v);
}

function scalarJson(type: string, v: unknown): unknown {
  if (LONGS.has(type)) return String(v);
  return v;
}

/** protojson (proto or JSON names; enums by name or number) as a plain object of `type`. */
export function fromProtoJson(type: protobuf.Type, json: unknown, at = type.name): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TypeError(`${at}: expected an object`);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(json as Record<string, unknown>)) {
    const field = type.fields[key] ?? type.fieldsArray.find((f) => jsonNameOf(f.name) === key);
    if (field === undefined) throw new TypeError(`${at}.${key}: no such field`);
    if (v === null) continue;
    if (field.repeated) {
      if (!Array.isArray(v)) throw new TypeError(`${at}.${key}: expected a list`);
      out[field.name] = v.map((x: unknown, i) => fieldFromJson(field, x, `${at}.${key}[${i}]`));
    } else {
      out[field.name] = fieldFromJson(field, v, `${at}.${key}`);
    }
  }
  return out;
}

function fieldFromJson(field: protobuf.Field, v: unknown, at: string): unknown {
  field.resolve();
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) {
    if (typeof v === 'number') return v;
    const n = typeof v === 'string' ? t.values[v] : undefined;
    if (n === undefined) throw new TypeError(`${at}: unknown ${t.name} value ${JSON.stringify(v)}`);
    return n;
  }
  if (t instanceof protobuf.Type) {
    if (isWellKnown(t, 'Timestamp')) {
      const ts: Timestamp | undefined = typeof v === 'string' ? parseTimestamp(v) : undefined;
      if (ts === undefined) throw new TypeError(`${at}: not an RFC 3339 time`);
      return ts;
    }
    if (t.fullName.startsWith('.google.protobuf.') && WRAPPERS.has(t.name)) return { value: v };
    return fromProtoJson(t, v, at);
  }
  if (LONGS.has(field.type) || ['uint32', 'int32', 'sint32', 'fixed32', 'sfixed32', 'double', 'float'].includes(field.type)) {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new TypeError(`${at}: expected a number`);
    return n;
  }
  return v;
}

function jsonNameOf(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
