/**
 * Rule ids: the number a policy entry carries (policy_entry.rule_id) and
 * the datapath reports in drop and trace events, mapped back to the rule it
 * came from (`x/allow-b ingress[1]`). Stable across recompiles: a rule that
 * still exists keeps its id, new rules get fresh ids counting up from 1 (0
 * means "no rule" in events), and ids are never reused, so an event read
 * late never names the wrong rule.
 */
import { PolicyError } from './errors.js';
import type { RuleRef } from './model.js';
import { policyId, type Policy } from './policy-types.js';

export interface RuleTable {
  readonly byId: ReadonlyMap<number, RuleRef>;
  readonly byKey: ReadonlyMap<string, number>;
  /** The next id to hand out. */
  readonly next: number;
}

export const EMPTY_RULE_TABLE: RuleTable = { byId: new Map(), byKey: new Map(), next: 1 };
const MAX_RULE_ID = 0xffffffff;

export function ruleKey(r: RuleRef): string {
  return `${r.policy} ${r.direction}[${r.index}]`;
}

/** Every rule of `policies`, ids kept from `previous` where the rule still exists. */
export function allocateRuleIds(previous: RuleTable, policies: readonly Policy[]): RuleTable {
  const byId = new Map<number, RuleRef>();
  const byKey = new Map<string, number>();
  const fresh: RuleRef[] = [];
  for (const p of policies) {
    for (const rule of [...p.ingress, ...p.egress]) {
      const ref: RuleRef = { policy: policyId(p), direction: rule.direction, index: rule.index };
      const key = ruleKey(ref);
      const id = previous.byKey.get(key);
      if (id === undefined) {
        fresh.push(ref);
        continue;
      }
      byId.set(id, ref);
      byKey.set(key, id);
    }
  }
  let next = previous.next;
  for (const ref of fresh) {
    if (next > MAX_RULE_ID) throw new PolicyError('exhausted', `no rule id left for ${ruleKey(ref)}`, 'rule');
    byId.set(next, ref);
    byKey.set(ruleKey(ref), next);
    next++;
  }
  return { byId, byKey, next };
}
