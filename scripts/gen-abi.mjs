#!/usr/bin/env node
// @ts-check
/**
 * Generates src/datapath/generated/abi.ts from the BTF of build/bpf/abi.o, so
 * that bpf/include/sluice_abi.h stays the only hand-written definition of the
 * shared layouts. The compiler owns offsets and sizes; we only read them.
 *
 *   node scripts/gen-abi.mjs            write the file
 *   node scripts/gen-abi.mjs --check    exit 1 if the file is stale (drift)
 *   node scripts/gen-abi.mjs --stdout   print instead of writing
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const objectPath = join(root, 'build/bpf/abi.o');
const outPath = join(root, 'src/datapath/generated/abi.ts');
const ANCHOR = 'sluice_abi_anchor';

/**
 * @typedef {{id: number, kind: string, name: string, size?: number, type_id?: number,
 *   members?: {name: string, type_id: number, bits_offset: number, bitfield_size?: number}[],
 *   values?: {name: string, val: number | string}[], nr_bits?: number, encoding?: string}} BtfType
 * @typedef {{name: string, offset: number, size: number, bigEndian: boolean, signed: boolean}} Field
 */

/** @returns {Map<number, BtfType>} */
function readBtf() {
  if (!existsSync(objectPath)) {
    throw new Error(`${objectPath} is missing: run scripts/build-bpf first`);
  }
  const json = execFileSync('bpftool', ['btf', 'dump', 'file', objectPath, '-j'], { encoding: 'utf8' });
  // bpftool prints a 32-bit enum value with the top bit set sign-extended to
  // 64 bits (0xa9fe2a01 as 18446744072266590721), beyond a double's
  // precision: such values are read as text and cut back to the enum's size.
  /** @type {{types: BtfType[]}} */
  const btf = JSON.parse(json.replace(/"val":\s*(-?\d{16,})/g, '"val":"$1"'));
  for (const t of btf.types) {
    if (t.kind !== 'ENUM') continue;
    const mask = (1n << BigInt(8 * (t.size ?? 4))) - 1n;
    for (const v of t.values ?? []) {
      if (typeof v.val === 'string') v.val = Number(BigInt(v.val) & mask);
    }
  }
  return new Map(btf.types.map((t) => [t.id, t]));
}

/** @param {Map<number, BtfType>} types @param {number} id */
function typeOf(types, id) {
  const t = types.get(id);
  if (!t) throw new Error(`BTF type id ${id} not found`);
  return t;
}

/**
 * Resolves a member's type to an integer field description. Byte order is
 * carried by the kernel's __be16/__be32 typedef names, which we keep as the
 * one marker of wire-order data.
 * @param {Map<number, BtfType>} types @param {number} id
 * @returns {{size: number, bigEndian: boolean, signed: boolean}}
 */
function intShape(types, id) {
  let bigEndian = false;
  let t = typeOf(types, id);
  for (;;) {
    if (t.kind === 'TYPEDEF') {
      if (/^__be(16|32|64)$/.test(t.name)) bigEndian = true;
      t = typeOf(types, /** @type {number} */ (t.type_id));
    } else if (t.kind === 'CONST' || t.kind === 'VOLATILE') {
      t = typeOf(types, /** @type {number} */ (t.type_id));
    } else if (t.kind === 'INT') {
      return { size: /** @type {number} */ (t.size), bigEndian, signed: t.encoding === 'SIGNED' };
    } else if (t.kind === 'ENUM') {
      return { size: /** @type {number} */ (t.size), bigEndian: false, signed: false };
    } else {
      throw new Error(`unsupported ABI member kind ${t.kind} (${t.name}): only integers, enums and typedefs of them`);
    }
  }
}

/** snake_case → camelCase / PascalCase. @param {string} s */
const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
/** @param {string} s */
const pascal = (s) => camel(s).replace(/^./, (c) => c.toUpperCase());

/** @param {Field} f */
function tsType(f) {
  return f.size === 8 ? 'bigint' : 'number';
}

// Host-order fields are written little-endian: every target we build for
// (x86_64, arm64) is little-endian, and BTF does not record byte order.
/** @param {Field} f @param {string} value */
function writeCall(f, value) {
  const o = f.offset;
  if (f.size === 1) return `b.writeUInt8(${value}, ${o});`;
  if (f.size === 8) return `b.writeBigUInt64${f.bigEndian ? 'BE' : 'LE'}(${value}, ${o});`;
  const bits = f.size * 8;
  const s = f.signed ? 'Int' : 'UInt';
  return `b.write${s}${bits}${f.bigEndian ? 'BE' : 'LE'}(${value}, ${o});`;
}

/** @param {Field} f */
function readCall(f) {
  const o = `o + ${f.offset}`;
  if (f.size === 1) return `b.readUInt8(${o})`;
  if (f.size === 8) return `b.readBigUInt64${f.bigEndian ? 'BE' : 'LE'}(${o})`;
  const bits = f.size * 8;
  const s = f.signed ? 'Int' : 'UInt';
  return `b.read${s}${bits}${f.bigEndian ? 'BE' : 'LE'}(${o})`;
}

/** @param {BtfType} st @param {Map<number, BtfType>} types */
function emitStruct(st, types) {
  const name = pascal(st.name);
  const codec = camel(st.name) + 'Codec';
  /** @type {Field[]} */
  const fields = [];
  for (const m of st.members ?? []) {
    if (m.bitfield_size) throw new Error(`${st.name}.${m.name}: bitfields are not allowed in the ABI`);
    if (m.bits_offset % 8 !== 0) throw new Error(`${st.name}.${m.name}: unaligned member`);
    const shape = intShape(types, m.type_id);
    fields.push({ name: m.name, offset: m.bits_offset / 8, ...shape });
  }
  const visible = fields.filter((f) => !/^pad\d*$/.test(f.name));
  const lines = [];
  lines.push(`/** struct ${st.name} (${st.size} bytes). */`);
  lines.push(`export interface ${name} {`);
  for (const f of visible) {
    const note = f.bigEndian ? ' // network byte order on the wire; natural value here' : '';
    lines.push(`  ${camel(f.name)}: ${tsType(f)};${note}`);
  }
  lines.push('}');
  lines.push('');
  lines.push(`export const ${codec}: Codec<${name}> = {`);
  lines.push(`  size: ${st.size},`);
  lines.push(`  encode(v: ${name}): Buffer {`);
  lines.push(`    const b = Buffer.alloc(${st.size});`);
  for (const f of visible) lines.push(`    ${writeCall(f, `v.${camel(f.name)}`)}`);
  lines.push('    return b;');
  lines.push('  },');
  lines.push(`  decode(b: Buffer, o = 0): ${name} {`);
  lines.push(`    if (b.length - o < ${st.size}) throw new RangeError(\`${st.name}: need ${st.size} bytes, got \${b.length - o}\`);`);
  lines.push('    return {');
  for (const f of visible) lines.push(`      ${camel(f.name)}: ${readCall(f)},`);
  lines.push('    };');
  lines.push('  },');
  lines.push('};');
  return lines.join('\n');
}

/** @param {BtfType} en */
function emitEnum(en) {
  const name = pascal(en.name);
  const values = en.values ?? [];
  // SLUICE_DROP_POLICY_DENIED in enum sluice_drop_reason → POLICY_DENIED:
  // strip the longest common prefix up to an underscore.
  const names = values.map((v) => v.name);
  // With one member the common prefix would be the whole name.
  if (names.length < 2) throw new Error(`enum ${en.name}: give it at least two members (e.g. a _NONE = 0)`);
  let prefix = names[0] ?? '';
  for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
  prefix = prefix.slice(0, prefix.lastIndexOf('_') + 1);
  const lines = [];
  lines.push(`/** enum ${en.name}. */`);
  lines.push(`export const ${name} = {`);
  for (const v of values) lines.push(`  ${v.name.slice(prefix.length)}: ${v.val},`);
  lines.push('} as const;');
  lines.push(`export type ${name} = (typeof ${name})[keyof typeof ${name}];`);
  lines.push('');
  const fn = camel(en.name) + 'Name';
  lines.push(`const ${camel(en.name)}Names = new Map<number, string>([`);
  const seen = new Set();
  for (const v of values) {
    if (seen.has(v.val)) continue; // aliases: the first name wins
    seen.add(v.val);
    lines.push(`  [${v.val}, '${v.name.slice(prefix.length)}'],`);
  }
  lines.push(']);');
  lines.push(`/** The name of a ${en.name} value, or "UNKNOWN(n)". */`);
  lines.push(`export function ${fn}(n: number): string {`);
  lines.push(`  return ${camel(en.name)}Names.get(n) ?? \`UNKNOWN(\${n})\`;`);
  lines.push('}');
  return lines.join('\n');
}

function generate() {
  const types = readBtf();
  const anchor = [...types.values()].find((t) => t.kind === 'STRUCT' && t.name === ANCHOR);
  if (!anchor) throw new Error(`struct ${ANCHOR} not found in ${objectPath}`);
  const parts = [
    '// GENERATED by scripts/gen-abi.mjs from the BTF of bpf/include/sluice_abi.h. DO NOT EDIT.',
    '// A test regenerates this file and fails when it differs (drift).',
    '',
    "import type { Codec } from '../api.js';",
    '',
  ];
  const structs = [];
  for (const m of anchor.members ?? []) {
    const t = typeOf(types, m.type_id);
    if (t.kind === 'STRUCT') {
      parts.push(emitStruct(t, types), '');
      structs.push(t.name);
    } else if (t.kind === 'ENUM') parts.push(emitEnum(t), '');
    else throw new Error(`anchor member ${m.name}: unsupported kind ${t.kind}`);
  }
  parts.push('/** Every shared struct\'s codec, by C struct name (size checks, tests). */');
  parts.push('export const structCodecs: Readonly<Record<string, Codec<object>>> = {');
  for (const n of structs) parts.push(`  ${n}: ${camel(n)}Codec,`);
  parts.push('};', '');
  return parts.join('\n');
}

const text = generate();
const mode = process.argv[2];
if (mode === '--stdout') {
  process.stdout.write(text);
} else if (mode === '--check') {
  const current = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  if (current !== text) {
    console.error(`${outPath} is stale: run node scripts/gen-abi.mjs`);
    process.exit(1);
  }
} else {
  mkdirSync(dirname(outPath), { recursive: true });
  const current = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  if (current !== text) {
    writeFileSync(outPath, text);
    console.log(`abi: wrote ${outPath}`);
  }
}
