/**
 * NetworkPolicy (networking.k8s.io/v1) → the engine's Policy.
 *
 * Everything the API server would reject is rejected here too, with the field
 * path; so is everything Sluice cannot enforce, and every field the API does
 * not define (no field is ever skipped). Legal but surprising spellings are
 * accepted with the API server's meaning and a warning, because the agent
 * must enforce whatever the API server admitted:
 * - `from: []` / `to: []` / `ports: []` are indistinguishable from omitting
 *   the field once stored (Go drops empty lists), so they mean "all";
 * - policyTypes absent or empty is defaulted: Ingress always, Egress when
 *   spec.egress has at least one rule (so `egress: []` alone isolates nothing);
 * - rules of a direction that policyTypes leaves out have no effect;
 * - an absent spec.podSelector decodes to `{}`: every pod of the namespace;
 * - a CIDR with host bits set is masked; an IPv6 block matches no traffic on
 *   the IPv4-only datapath.
 */
import { cidrContainsCidr, formatCidr, parseCidr, type Cidr } from './cidr.js';
import { IssueList, type Checked } from './errors.js';
import {
  arrayField,
  at,
  checkKnownFields,
  describe,
  isAbsent,
  isObject,
  objectField,
  stringField,
  type Obj,
} from './fields.js';
import { checkDnsLabel, checkDnsSubdomain, checkPortName } from './names.js';
import { PROTOCOLS, type Direction, type PeerMatcher, type Policy, type PolicyRule, type PortMatcher, type Protocol } from './policy-types.js';
import { EVERYTHING, parseSelector } from './selectors.js';

export interface ValidateOptions {
  /** Namespace of a policy whose metadata has none, as `kubectl apply` would use. Default "default". */
  readonly defaultNamespace?: string;
}

/** Fields of ObjectMeta, all accepted; only name and namespace matter to policy. */
const OBJECT_META_FIELDS = [
  'name', 'namespace', 'labels', 'annotations', 'uid', 'resourceVersion', 'generation', 'generateName',
  'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'finalizers', 'managedFields',
  'ownerReferences', 'selfLink',
] as const;

const RULE_PEERS: Record<Direction, 'from' | 'to'> = { ingress: 'from', egress: 'to' };

/**
 * Validates one NetworkPolicy object (parsed YAML/JSON or a client-node
 * V1NetworkPolicy) and compiles it. All problems are reported at once.
 */
export function validateNetworkPolicy(obj: unknown, options: ValidateOptions = {}): Checked<Policy> {
  const issues = new IssueList();
  if (!isObject(obj)) {
    issues.error('invalid', '', `a NetworkPolicy must be an object, got ${describe(obj)}`);
    return issues.fail();
  }
  checkKnownFields(obj, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], '', issues);
  const apiVersion = stringField(obj, 'apiVersion', '', issues);
  if (apiVersion !== undefined && apiVersion !== 'networking.k8s.io/v1') {
    issues.error('unsupported', 'apiVersion', `"${apiVersion}" is not supported (want networking.k8s.io/v1)`);
  }
  const kind = stringField(obj, 'kind', '', issues);
  if (kind !== undefined && kind !== 'NetworkPolicy') {
    issues.error('invalid', 'kind', `"${kind}" is not a NetworkPolicy`);
  }

  const { namespace, name } = parseMetadata(obj, options.defaultNamespace ?? 'default', issues);
  issues.object = `NetworkPolicy ${namespace}/${name ?? '?'}`;

  const spec = objectField(obj, 'spec', '', issues);
  if (spec === undefined) {
    if (isAbsent(obj['spec'])) issues.error('required', 'spec', 'spec is required');
    return issues.fail();
  }
  checkKnownFields(spec, ['podSelector', 'policyTypes', 'ingress', 'egress'], 'spec', issues);

  let podSelector = parseSelector(spec['podSelector'], 'spec.podSelector', issues);
  if (podSelector === null) {
    issues.warn('spec.podSelector', 'absent: selects every pod of the namespace, as the API server reads it (write podSelector: {} to say so)');
    podSelector = EVERYTHING;
  }

  const ingressRaw = arrayField(spec, 'ingress', 'spec', issues);
  const egressRaw = arrayField(spec, 'egress', 'spec', issues);
  const affects = parsePolicyTypes(spec, egressRaw, issues);

  const ingress = parseRules('ingress', ingressRaw, namespace, issues);
  const egress = parseRules('egress', egressRaw, namespace, issues);
  if (!affects.ingress && ingressRaw !== undefined && ingressRaw.length > 0) {
    issues.warn('spec.ingress', 'has no effect: spec.policyTypes does not include Ingress');
  }
  if (!affects.egress && egressRaw !== undefined && egressRaw.length > 0) {
    issues.warn('spec.egress', 'has no effect: spec.policyTypes does not include Egress');
  }

  if (name === undefined || podSelector === undefined) return issues.fail();
  return issues.result<Policy>({
    namespace,
    name,
    podSelector,
    affects,
    ingress: affects.ingress ? ingress : [],
    egress: affects.egress ? egress : [],
  });
}

function parseMetadata(obj: Obj, defaultNamespace: string, issues: IssueList): { namespace: string; name?: string } {
  const meta = objectField(obj, 'metadata', '', issues);
  if (meta === undefined) {
    if (isAbsent(obj['metadata'])) issues.error('required', 'metadata.name', 'metadata.name is required');
    return { namespace: defaultNamespace };
  }
  checkKnownFields(meta, OBJECT_META_FIELDS, 'metadata', issues);
  const name = stringField(meta, 'name', 'metadata', issues);
  if (name === undefined || name === '') {
    if (name === '' || isAbsent(meta['name'])) issues.error('required', 'metadata.name', 'metadata.name is required');
  } else {
    const bad = checkDnsSubdomain(name);
    if (bad !== undefined) issues.error('invalid', 'metadata.name', bad);
  }
  let namespace = stringField(meta, 'namespace', 'metadata', issues);
  if (namespace === undefined || namespace === '') {
    namespace = defaultNamespace;
  } else {
    const bad = checkDnsLabel(namespace);
    if (bad !== undefined) issues.error('invalid', 'metadata.namespace', bad);
  }
  return name === undefined || name === '' ? { namespace } : { namespace, name };
}

function parsePolicyTypes(
  spec: Obj,
  egressRaw: readonly unknown[] | undefined,
  issues: IssueList,
): { ingress: boolean; egress: boolean } {
  const list = arrayField(spec, 'policyTypes', 'spec', issues);
  const defaulted = { ingress: true, egress: egressRaw !== undefined && egressRaw.length > 0 };
  if (list === undefined || list.length === 0) {
    if (list !== undefined) {
      issues.warn('spec.policyTypes', 'an empty list is the same as omitting it: defaulted from the rules');
    }
    if (!defaulted.egress && egressRaw !== undefined) {
      issues.warn(
        'spec.egress',
        'is empty and spec.policyTypes is not set, so this policy does not isolate egress ' +
          '(the API server defaults policyTypes to [Ingress]); set policyTypes: [Ingress, Egress] to deny all egress',
      );
    }
    return defaulted;
  }
  if (list.length > 2) {
    issues.error('invalid', 'spec.policyTypes', `at most 2 entries (Ingress, Egress), got ${list.length}`);
  }
  const affects = { ingress: false, egress: false };
  list.forEach((t, i) => {
    const path = at('spec.policyTypes', i);
    if (t === 'Ingress' || t === 'Egress') {
      const key = t === 'Ingress' ? 'ingress' : 'egress';
      if (affects[key]) issues.warn(path, `${t} is listed twice`);
      affects[key] = true;
    } else {
      issues.error('invalid', path, `unknown policy type ${describe(t)} (want Ingress or Egress)`);
    }
  });
  return affects;
}

function parseRules(direction: Direction, list: readonly unknown[] | undefined, namespace: string, issues: IssueList): PolicyRule[] {
  const rules: PolicyRule[] = [];
  (list ?? []).forEach((raw, index) => {
    const path = at(at('spec', direction), index);
    if (!isObject(raw)) {
      issues.error('invalid', path, `must be a rule object, got ${describe(raw)}`);
      return;
    }
    const peersKey = RULE_PEERS[direction];
    checkKnownFields(raw, [peersKey, 'ports'], path, issues);
    const peers = parsePeers(raw, peersKey, path, namespace, issues);
    const ports = parsePorts(raw, path, issues);
    if (peers !== undefined && ports !== undefined) rules.push({ direction, index, peers, ports });
  });
  return rules;
}

function parsePeers(
  rule: Obj,
  key: 'from' | 'to',
  rulePath: string,
  namespace: string,
  issues: IssueList,
): PolicyRule['peers'] | undefined {
  const list = arrayField(rule, key, rulePath, issues);
  if (list === undefined) return isAbsent(rule[key]) ? 'all' : undefined;
  if (list.length === 0) {
    issues.warn(
      at(rulePath, key),
      `an empty list matches every ${key === 'from' ? 'source' : 'destination'}, exactly like omitting it ` +
        '(the API server stores them alike); to allow none, remove the rule',
    );
    return 'all';
  }
  const before = issues.errorCount;
  const peers: PeerMatcher[] = [];
  list.forEach((raw, i) => {
    const peer = parsePeer(raw, at(at(rulePath, key), i), namespace, issues);
    if (peer !== undefined) peers.push(peer);
  });
  return issues.errorCount > before ? undefined : peers;
}

function parsePeer(raw: unknown, path: string, namespace: string, issues: IssueList): PeerMatcher | undefined {
  if (!isObject(raw)) {
    issues.error('invalid', path, `must be a peer object, got ${describe(raw)}`);
    return undefined;
  }
  checkKnownFields(raw, ['podSelector', 'namespaceSelector', 'ipBlock'], path, issues);
  const hasIpBlock = !isAbsent(raw['ipBlock']);
  const hasPods = !isAbsent(raw['podSelector']);
  const hasNamespaces = !isAbsent(raw['namespaceSelector']);
  if (!hasIpBlock && !hasPods && !hasNamespaces) {
    issues.error('required', path, 'a peer needs podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  if (hasIpBlock) {
    if (hasPods || hasNamespaces) {
      issues.error('invalid', path, 'ipBlock cannot be combined with podSelector or namespaceSelector in one peer');
      return undefined;
    }
    return parseIpBlock(raw['ipBlock'], at(path, 'ipBlock'), issues);
  }
  const pods = parseSelector(raw['podSelector'], at(path, 'podSelector'), issues);
  const namespaces = parseSelector(raw['namespaceSelector'], at(path, 'namespaceSelector'), issues);
  if (pods === undefined || namespaces === undefined) return undefined;
  return {
    kind: 'pods',
    namespaces: namespaces === null ? { kind: 'policy-namespace', namespace } : { kind: 'selector', selector: namespaces },
    pods: pods ?? EVERYTHING,
  };
}

function parseIpBlock(raw: unknown, path: string, issues: IssueList): PeerMatcher | undefined {
  if (!isObject(raw)) {
    issues.error('invalid', path, `must be an object {cidr, except}, got ${describe(raw)}`);
    return undefined;
  }
  checkKnownFields(raw, ['cidr', 'except'], path, issues);
  const before = issues.errorCount;
  const cidrText = stringField(raw, 'cidr', path, issues);
  if (cidrText === undefined || cidrText === '') {
    if (cidrText === '' || isAbsent(raw['cidr'])) issues.error('required', at(path, 'cidr'), 'cidr is required');
    return undefined;
  }
  const cidr = cidrValue(cidrText, at(path, 'cidr'), issues);
  if (cidr?.family === 6) {
    issues.warn(at(path, 'cidr'), 'an IPv6 block matches no traffic: the Sluice datapath carries IPv4 only');
  }
  const except: Cidr[] = [];
  (arrayField(raw, 'except', path, issues) ?? []).forEach((e, i) => {
    const epath = at(at(path, 'except'), i);
    if (typeof e !== 'string') {
      issues.error('invalid', epath, `must be a CIDR string, got ${describe(e)}`);
      return;
    }
    const ex = cidrValue(e, epath, issues);
    if (ex === undefined || cidr === undefined) return;
    if (!cidrContainsCidr(cidr, ex) || ex.prefixlen <= cidr.prefixlen) {
      issues.error('invalid', epath, `${e} must be a strict subset of cidr ${formatCidr(cidr)}`);
      return;
    }
    except.push(ex);
  });
  if (cidr === undefined || issues.errorCount > before) return undefined;
  return { kind: 'ipBlock', cidr, except };
}

function cidrValue(text: string, path: string, issues: IssueList): Cidr | undefined {
  const parsed = parseCidr(text);
  if (typeof parsed === 'string') {
    issues.error('invalid', path, parsed);
    return undefined;
  }
  if (parsed.hostBitsSet) {
    issues.warn(path, `${text} has host bits set; it means ${formatCidr(parsed.cidr)}`);
  }
  return parsed.cidr;
}

function parsePorts(rule: Obj, rulePath: string, issues: IssueList): PolicyRule['ports'] | undefined {
  const list = arrayField(rule, 'ports', rulePath, issues);
  if (list === undefined) return isAbsent(rule['ports']) ? 'all' : undefined;
  if (list.length === 0) {
    issues.warn(at(rulePath, 'ports'), 'an empty list matches every port and protocol, exactly like omitting it');
    return 'all';
  }
  const before = issues.errorCount;
  const ports: PortMatcher[] = [];
  list.forEach((raw, i) => {
    const port = parsePort(raw, at(at(rulePath, 'ports'), i), issues);
    if (port !== undefined) ports.push(port);
  });
  return issues.errorCount > before ? undefined : ports;
}

function parsePort(raw: unknown, path: string, issues: IssueList): PortMatcher | undefined {
  if (!isObject(raw)) {
    issues.error('invalid', path, `must be an object {protocol, port, endPort}, got ${describe(raw)}`);
    return undefined;
  }
  checkKnownFields(raw, ['protocol', 'port', 'endPort'], path, issues);
  const before = issues.errorCount;
  const protocol = parseProtocol(raw, path, issues);
  const port = raw['port'];
  const endPort = raw['endPort'];

  let spec: PortMatcher['port'] | undefined;
  if (isAbsent(port)) {
    if (!isAbsent(endPort)) issues.error('required', at(path, 'port'), 'endPort needs a numeric port to start the range');
    spec = { kind: 'all' };
  } else if (typeof port === 'number') {
    if (checkPortNumber(port, at(path, 'port'), issues)) {
      if (isAbsent(endPort)) {
        spec = { kind: 'range', from: port, to: port };
      } else if (typeof endPort !== 'number') {
        issues.error('invalid', at(path, 'endPort'), `must be a number, got ${describe(endPort)}`);
      } else if (checkPortNumber(endPort, at(path, 'endPort'), issues)) {
        if (endPort < port) issues.error('invalid', at(path, 'endPort'), `must be ≥ port (${port}), got ${endPort}`);
        else spec = { kind: 'range', from: port, to: endPort };
      }
    }
  } else if (typeof port === 'string') {
    const bad = checkPortName(port);
    if (bad !== undefined) issues.error('invalid', at(path, 'port'), bad);
    else if (!isAbsent(endPort)) issues.error('invalid', at(path, 'endPort'), `cannot be used with a named port ("${port}")`);
    else spec = { kind: 'named', name: port };
  } else {
    issues.error('invalid', at(path, 'port'), `must be a port number or name, got ${describe(port)}`);
  }
  if (protocol === undefined || spec === undefined || issues.errorCount > before) return undefined;
  return { protocol, port: spec };
}

function parseProtocol(raw: Obj, path: string, issues: IssueList): Protocol | undefined {
  const p = raw['protocol'];
  if (isAbsent(p)) return 'TCP';
  if (typeof p === 'string' && (PROTOCOLS as readonly string[]).includes(p)) return p as Protocol;
  const hint =
    typeof p === 'string' && (PROTOCOLS as readonly string[]).includes(p.toUpperCase()) ? ` (protocols are upper case: ${p.toUpperCase()})` : '';
  issues.error('invalid', at(path, 'protocol'), `unsupported protocol ${describe(p)}; want ${PROTOCOLS.join(', ')}${hint}`);
  return undefined;
}

function checkPortNumber(n: number, path: string, issues: IssueList): boolean {
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    issues.error('invalid', path, `must be a port number 1..65535, got ${n}`);
    return false;
  }
  return true;
}
