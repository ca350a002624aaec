// Reads the JUnit files test/conformance/run wrote (one per focus set) and prints a table of
// passed, failed and skipped specs per set, then each failed spec with the first line of its
// failure. Ginkgo's report lists every spec of the suite: those the focus and skips filtered out
// carry the bare message "skipped" and are not counted; a spec that skipped itself at run time
// ("skipped - <reason>") is counted as skipped, with its reason.
//
// With --dry-run, the files come from `--ginkgo.dry-run`, where every selected spec reports
// passed: the table counts them, and, where run wrote the focus-only file (focus-<set>.xml),
// the specs of the focus that the skips left out, by reason.
//
// Usage: node test/conformance/summary.mjs [--dry-run] DIR SET...
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const dryRun = args[0] === '--dry-run';
if (dryRun) args.shift();
const [dir, ...sets] = args;
if (!dir || sets.length === 0) {
  console.error('usage: node test/conformance/summary.mjs [--dry-run] DIR SET...');
  process.exit(2);
}

const unescape = (s) =>
  s.replace(/&#xA;/g, '\n').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&amp;/g, '&');

// Every `[It]` testcase of a JUnit file: name, status, and the message of its <failure> or
// <skipped> element (Ginkgo writes one testcase per spec, never nested).
function specs(file) {
  const xml = readFileSync(file, 'utf8');
  const out = [];
  const re = /<testcase name="([^"]*)"[^>]*status="([a-z]+)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const name = unescape(m[1]);
    if (!name.startsWith('[It] ')) continue;
    const body = m[3] ?? '';
    const msg = /<(?:failure|skipped|error) message="([^"]*)"/.exec(body);
    out.push({ name: name.slice(5), status: m[2], message: msg ? unescape(msg[1]) : '' });
  }
  return out;
}

// Why the skips left a spec of the focus out, from the tags in its name (the same rules as run's
// label filter and skip expression).
function skipReason(name) {
  const features = [...name.matchAll(/\[Feature:([^\]]+)\]/g)].map((m) => m[1]).filter((f) => f !== 'NetworkPolicy');
  if (features.length) return `Feature:${features.join(',')}`;
  if (name.includes('[Disruptive]')) return 'Disruptive';
  if (name.includes('[Serial]')) return 'Serial';
  if (/IPv6|[Dd]ual[- ]?[Ss]tack/.test(name)) return 'IPv6/dual-stack';
  if (name.includes('[Provider:')) return 'cloud provider';
  return 'other';
}

const rows = [];
const details = [];
let exit = 0;
for (const set of sets) {
  const file = join(dir, `junit-${set}.xml`);
  if (!existsSync(file)) {
    rows.push([set, 'no report', '', '', '']);
    exit = 1;
    continue;
  }
  const selected = specs(file).filter((s) => !(s.status === 'skipped' && s.message === 'skipped'));
  const count = (st) => selected.filter((s) => s.status === st).length;
  const passed = count('passed');
  const skipped = count('skipped');
  const failed = selected.length - passed - skipped;
  if (failed) exit = 1;
  rows.push([set, String(selected.length), String(passed), String(failed), String(skipped)]);
  for (const s of selected.filter((x) => x.status !== 'passed' && x.status !== 'skipped')) {
    details.push(`  FAIL [${set}] ${s.name}\n       ${s.message.split('\n').find((l) => l.trim()) ?? s.status}`);
  }
  for (const s of selected.filter((x) => x.status === 'skipped')) {
    details.push(`  SKIP [${set}] ${s.name}\n       ${s.message.replace(/^skipped - /, '').split('\n')[0]}`);
  }
  const focusFile = join(dir, `focus-${set}.xml`);
  if (dryRun && existsSync(focusFile)) {
    const chosen = new Set(selected.map((s) => s.name));
    const left = specs(focusFile).filter((s) => s.status === 'passed' && !chosen.has(s.name));
    const byReason = new Map();
    for (const s of left) byReason.set(skipReason(s.name), (byReason.get(skipReason(s.name)) ?? 0) + 1);
    const reasons = [...byReason].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`).join(', ');
    details.push(`  [${set}] ${left.length} specs of the focus left out by the skips${reasons ? `: ${reasons}` : ''}`);
  }
}

const head = dryRun ? ['set', 'selected', 'passed', 'failed', 'skipped'] : ['set', 'specs', 'passed', 'failed', 'skipped'];
const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
console.log(dryRun ? 'dry run (--ginkgo.dry-run: every selected spec reports passed)' : 'e2e results');
console.log(line(head));
for (const r of rows) console.log(line(r));
const total = rows.reduce((t, r) => t.map((v, i) => (i === 0 ? v : String(Number(v) + (Number(r[i]) || 0)))), ['total', '0', '0', '0', '0']);
if (rows.length > 1) console.log(line(total));
if (details.length) console.log(details.join('\n'));
process.exit(dryRun ? 0 : exit);
