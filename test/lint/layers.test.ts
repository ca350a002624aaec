/**
 * The import rules of .dependency-cruiser.mjs, run the way lint runs them
 * (the depcruise CLI with the project's config): on the fixture tree
 * test/lint/fixtures/layers, which breaks each rule exactly once next to
 * imports the rules allow, every rule fires on its import and nothing else
 * does; on the real tree (src, bench, test, scripts) nothing fires.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CONFIG = `${ROOT}.dependency-cruiser.mjs`;
const FIXTURE = `${ROOT}test/lint/fixtures/layers`;
const DEPCRUISE = `${ROOT}node_modules/dependency-cruiser/bin/dependency-cruise.mjs`;

interface Violation {
  readonly rule: string;
  readonly from: string;
  readonly to: string;
}

interface CruiseOutput {
  readonly summary: {
    readonly totalCruised: number;
    readonly violations: ReadonlyArray<{ readonly rule: { readonly name: string }; readonly from: string; readonly to: string }>;
  };
}

/** Runs depcruise in `cwd` over `paths` with the project's config; the violations, sorted. */
function cruise(cwd: string, paths: readonly string[]): { violations: Violation[]; modules: number } {
  const r = spawnSync(process.execPath,
    [DEPCRUISE, ...paths, '--config', CONFIG, '--ts-config', `${ROOT}tsconfig.json`, '--output-type', 'json'],
    { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.error, undefined);
  // depcruise exits with the number of errors found: only the JSON tells a crash from violations.
  let out: CruiseOutput;
  try {
    out = JSON.parse(r.stdout) as CruiseOutput;
  } catch {
    assert.fail(`depcruise printed no JSON (exit ${String(r.status)}): ${r.stderr}`);
  }
  const violations = out.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
  violations.sort((a, b) => `${a.rule} ${a.from} ${a.to}`.localeCompare(`${b.rule} ${b.from} ${b.to}`));
  return { violations, modules: out.summary.totalCruised };
}

test('each rule fires on the fixture\'s forbidden import, and only there', () => {
  const { violations, modules } = cruise(FIXTURE, ['src']);
  assert.deepEqual(violations, [
    { rule: 'cni-below-agent', from: 'src/cni/add.ts', to: 'src/agent/config.ts' },
    { rule: 'datapath-below-agent-cni-lab-cli', from: 'src/datapath/maps/services.ts', to: 'src/agent/config.ts' },
    { rule: 'generated-abi-is-a-leaf', from: 'src/datapath/generated/lookup.ts', to: 'src/datapath/maps/services.ts' },
    { rule: 'no-circular', from: 'src/lab/ring-a.ts', to: 'src/lab/ring-b.ts' },
    { rule: 'not-to-unresolvable', from: 'src/cli/side-effect.ts', to: './missing.js' },
    { rule: 'pure-flow', from: 'src/flow/ring.ts', to: 'fs' },
    { rule: 'pure-policy-lb', from: 'src/lb/maglev.ts', to: 'src/datapath/maps/services.ts' },
    { rule: 'pure-policy-lb', from: 'src/policy/reads-file.ts', to: 'fs' },
    { rule: 'reconcile-below-agent-cni-lab-cli', from: 'src/reconcile/policy.ts', to: 'src/cli/main.ts' },
  ]);
  // 16 fixture modules, node:fs and the missing one: every `.js` import resolved to its `.ts` file.
  assert.equal(modules, 18);
});

test('the real tree breaks no rule', () => {
  const { violations, modules } = cruise(ROOT, ['src', 'bench', 'test', 'scripts']);
  assert.ok(modules > 300, `cruised ${modules} modules: the tree was read`);
  assert.deepEqual(violations.map((v) => `${v.rule}: ${v.from} → ${v.to}`), []);
});
