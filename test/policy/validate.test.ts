/**
 * NetworkPolicy validation: what compiles to what, every rejection with its
 * field path, and the warnings for legal-but-surprising spellings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCidr } from '../../src/policy/cidr.js';
import type { Policy } from '../../src/policy/policy-types.js';
import { validateNetworkPolicy } from '../../src/policy/validate.js';

function policyWith(spec: unknown, metadata: unknown = { name: 'p', namespace: 'x' }): unknown {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec };
}

function ok(obj: unknown): { policy: Policy; warnings: string[] } {
  const r = validateNetworkPolicy(obj);
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return { policy: r.value, warnings: r.warnings.map((w) => `${w.path}: ${w.message}`) };
}

/** The "path: message" of every error. */
function errors(obj: unknown): string[] {
  const r = validateNetworkPolicy(obj);
  assert.equal(r.ok, false, 'expected a rejection');
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

function ingressPort(port: unknown): unknown {
  return policyWith({ podSelector: {}, ingress: [{ ports: [{ protocol: 'TCP' }, port] }] });
}

test('a complete policy compiles: selectors, peer scopes, ports, ipBlocks', () => {
  const { policy, warnings } = ok(
    policyWith({
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { pod: 'b' } } },
            { namespaceSelector: { matchLabels: { ns: 'y' } } },
            { namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } },
            { ipBlock: { cidr: '10.0.0.0/8', except: ['10.9.1.0/24'] } },
          ],
          ports: [{ port: 80 }, { protocol: 'UDP', port: 'dns' }, { protocol: 'SCTP', port: 1000, endPort: 2000 }, { protocol: 'UDP' }],
        },
      ],
      egress: [{}],
    }),
  );
  assert.deepEqual(warnings, []);
  assert.equal(policy.namespace, 'x');
  assert.equal(policy.name, 'p');
  assert.equal(policy.podSelector.text, 'pod=a');
  assert.deepEqual(policy.affects, { ingress: true, egress: true });
  const rule = policy.ingress[0];
  assert.ok(rule !== undefined && rule.peers !== 'all' && rule.ports !== 'all');
  assert.equal(rule.direction, 'ingress');
  assert.equal(rule.index, 0);
  const [p0, p1, p2, p3] = rule.peers;
  assert.deepEqual(p0, { kind: 'pods', namespaces: { kind: 'policy-namespace', namespace: 'x' }, pods: { requirements: [{ key: 'pod', operator: 'In', values: ['b'] }], text: 'pod=b' } });
  assert.ok(p1?.kind === 'pods' && p1.namespaces.kind === 'selector');
  assert.equal(p1.namespaces.selector.text, 'ns=y');
  assert.equal(p1.pods.text, '', 'a lone namespaceSelector takes every pod');
  assert.ok(p2?.kind === 'pods' && p2.namespaces.kind === 'selector' && p2.namespaces.selector.text === '' && p2.pods.text === 'tier');
  assert.ok(p3?.kind === 'ipBlock');
  assert.equal(formatCidr(p3.cidr), '10.0.0.0/8');
  assert.deepEqual(p3.except.map(formatCidr), ['10.9.1.0/24']);
  assert.deepEqual(rule.ports, [
    { protocol: 'TCP', port: { kind: 'range', from: 80, to: 80 } },
    { protocol: 'UDP', port: { kind: 'named', name: 'dns' } },
    { protocol: 'SCTP', port: { kind: 'range', from: 1000, to: 2000 } },
    { protocol: 'UDP', port: { kind: 'all' } },
  ]);
  assert.deepEqual(policy.egress, [{ direction: 'egress', index: 0, peers: 'all', ports: 'all' }]);
});

test('policyTypes: explicit wins, otherwise Ingress always and Egress with egress rules', () => {
  assert.deepEqual(ok(policyWith({ podSelector: {} })).policy.affects, { ingress: true, egress: false });
  assert.deepEqual(ok(policyWith({ podSelector: {}, egress: [{}] })).policy.affects, { ingress: true, egress: true });
  assert.deepEqual(ok(policyWith({ podSelector: {}, policyTypes: ['Egress'] })).policy.affects, { ingress: false, egress: true });
  assert.deepEqual(ok(policyWith({ podSelector: {}, policyTypes: ['Egress', 'Ingress'] })).policy.affects, { ingress: true, egress: true });
  const emptyEgress = ok(policyWith({ podSelector: {}, egress: [] }));
  assert.deepEqual(emptyEgress.policy.affects, { ingress: true, egress: false });
  assert.match(emptyEgress.warnings.join('\n'), /spec\.egress: is empty and spec\.policyTypes is not set, so this policy does not isolate egress/);
  const emptyTypes = ok(policyWith({ podSelector: {}, policyTypes: [], egress: [{}] }));
  assert.deepEqual(emptyTypes.policy.affects, { ingress: true, egress: true });
  assert.match(emptyTypes.warnings.join('\n'), /spec\.policyTypes: an empty list is the same as omitting it/);
});

test('rules of a direction policyTypes leaves out are dropped, with a warning', () => {
  const { policy, warnings } = ok(policyWith({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}], egress: [{}] }));
  assert.deepEqual(policy.ingress, []);
  assert.equal(policy.egress.length, 1);
  assert.deepEqual(warnings, ['spec.ingress: has no effect: spec.policyTypes does not include Ingress']);
  const other = ok(policyWith({ podSelector: {}, policyTypes: ['Ingress'], egress: [{}] }));
  assert.deepEqual(other.policy.egress, []);
  assert.deepEqual(other.warnings, ['spec.egress: has no effect: spec.policyTypes does not include Egress']);
  assert.deepEqual(ok(policyWith({ podSelector: {}, policyTypes: ['Ingress', 'Ingress'] })).warnings, ['spec.policyTypes[1]: Ingress is listed twice']);
});

test('empty from/to/ports lists mean "all", with a warning; null means absent', () => {
  const { policy, warnings } = ok(policyWith({ podSelector: {}, ingress: [{ from: [], ports: [] }], egress: [{ to: null, ports: null }] }));
  assert.deepEqual(policy.ingress[0], { direction: 'ingress', index: 0, peers: 'all', ports: 'all' });
  assert.deepEqual(policy.egress[0], { direction: 'egress', index: 0, peers: 'all', ports: 'all' });
  assert.deepEqual(warnings, [
    'spec.ingress[0].from: an empty list matches every source, exactly like omitting it (the API server stores them alike); to allow none, remove the rule',
    'spec.ingress[0].ports: an empty list matches every port and protocol, exactly like omitting it',
  ]);
  assert.match(ok(policyWith({ podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [] }] })).warnings.join(), /every destination/);
});

test('an absent podSelector selects the whole namespace, with a warning', () => {
  const { policy, warnings } = ok(policyWith({ ingress: [] }));
  assert.equal(policy.podSelector.text, '');
  assert.match(warnings.join(), /spec\.podSelector: absent: selects every pod/);
});

test('metadata: namespace defaults, name is required, names are checked', () => {
  assert.equal(ok(policyWith({ podSelector: {} }, { name: 'p' })).policy.namespace, 'default');
  const r = validateNetworkPolicy(policyWith({ podSelector: {} }, { name: 'p' }), { defaultNamespace: 'team' });
  assert.ok(r.ok && r.value.namespace === 'team');
  assert.deepEqual(errors(policyWith({ podSelector: {} }, { namespace: 'x' })), ['metadata.name: metadata.name is required']);
  assert.deepEqual(errors(policyWith({ podSelector: {} }, null)), ['metadata.name: metadata.name is required']);
  assert.deepEqual(errors(policyWith({ podSelector: {} }, { name: 'Bad_Name', namespace: 'X' })), [
    'metadata.name: "Bad_Name" must be lowercase alphanumerics, "-" or ".", starting and ending with an alphanumeric',
    'metadata.namespace: "X" must be lowercase alphanumerics or "-", starting and ending with an alphanumeric',
  ]);
  const withServerFields = ok(
    policyWith({ podSelector: {} }, { name: 'p', namespace: 'x', uid: 'u', resourceVersion: '1', creationTimestamp: new Date(0), annotations: { a: 'b' }, managedFields: [] }),
  );
  assert.equal(withServerFields.policy.name, 'p');
});

test('issues name the object', () => {
  const r = validateNetworkPolicy(policyWith({ podSelector: {}, bogus: 1 }, { name: 'p', namespace: 'x' }));
  assert.ok(!r.ok);
  assert.equal(r.errors[0]?.object, 'NetworkPolicy x/p');
  assert.equal(r.errors[0]?.code, 'unknown-field');
});

test('apiVersion, kind, spec and the top level', () => {
  assert.deepEqual(errors({ apiVersion: 'networking.k8s.io/v1beta1', kind: 'NetworkPolicy', metadata: { name: 'p' }, spec: {} }), [
    'apiVersion: "networking.k8s.io/v1beta1" is not supported (want networking.k8s.io/v1)',
  ]);
  assert.deepEqual(errors({ kind: 'Pod', metadata: { name: 'p' }, spec: {} }), ['kind: "Pod" is not a NetworkPolicy']);
  assert.deepEqual(errors({ metadata: { name: 'p' } }), ['spec: spec is required']);
  assert.deepEqual(errors({ metadata: { name: 'p' }, spec: [] }), ['spec: must be an object, got a list']);
  assert.deepEqual(errors('policy'), [': a NetworkPolicy must be an object, got a string ("policy")']);
  assert.ok(ok({ metadata: { name: 'p', namespace: 'x' }, spec: { podSelector: {} } }), 'apiVersion and kind may be absent (List items)');
  assert.ok(ok({ ...(policyWith({ podSelector: {} }) as object), status: { conditions: [] } }), 'status is server-written and accepted');
});

test('unknown fields are rejected at every level', () => {
  assert.deepEqual(
    errors(
      policyWith(
        {
          podSelector: {},
          ingres: [],
          ingress: [{ form: [], from: [{ podSelectr: {} }] }, { from: [{ ipBlock: { cidr: '10.0.0.0/8', exept: [] } }], ports: [{ prot: 'TCP' }] }],
        },
        { name: 'p', namespace: 'x', lables: {} },
      ),
    ),
    [
      'metadata.lables: unknown field "lables" (known: name, namespace, labels, annotations, uid, resourceVersion, generation, generateName, creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds, finalizers, managedFields, ownerReferences, selfLink)',
      'spec.ingres: unknown field "ingres" (known: podSelector, policyTypes, ingress, egress)',
      'spec.ingress[0].form: unknown field "form" (known: from, ports)',
      'spec.ingress[0].from[0].podSelectr: unknown field "podSelectr" (known: podSelector, namespaceSelector, ipBlock)',
      'spec.ingress[0].from[0]: a peer needs podSelector, namespaceSelector or ipBlock',
      'spec.ingress[1].from[0].ipBlock.exept: unknown field "exept" (known: cidr, except)',
      'spec.ingress[1].ports[0].prot: unknown field "prot" (known: protocol, port, endPort)',
    ],
  );
  assert.deepEqual(errors(policyWith({ podSelector: {}, egress: [{ from: [] }] })), ['spec.egress[0].from: unknown field "from" (known: to, ports)']);
  assert.deepEqual(errors(policyWith({ bogus: 1 }, { name: 'p', namespace: 'x' })).length, 1);
  assert.deepEqual(errors({ ...(policyWith({ podSelector: {} }) as object), extra: true }), [
    'extra: unknown field "extra" (known: apiVersion, kind, metadata, spec, status)',
  ]);
});

test('policyTypes must be Ingress or Egress, at most two', () => {
  assert.deepEqual(errors(policyWith({ podSelector: {}, policyTypes: ['ingress', 'Both'] })), [
    'spec.policyTypes[0]: unknown policy type a string ("ingress") (want Ingress or Egress)',
    'spec.policyTypes[1]: unknown policy type a string ("Both") (want Ingress or Egress)',
  ]);
  assert.deepEqual(errors(policyWith({ podSelector: {}, policyTypes: ['Ingress', 'Egress', 'Ingress'] })), [
    'spec.policyTypes: at most 2 entries (Ingress, Egress), got 3',
  ]);
  assert.deepEqual(errors(policyWith({ podSelector: {}, policyTypes: 'Ingress' })), ['spec.policyTypes: must be a list, got a string ("Ingress")']);
});

test('ports: endPort needs a numeric port and must not be below it', () => {
  assert.deepEqual(errors(ingressPort({ endPort: 90 })), ['spec.ingress[0].ports[1].port: endPort needs a numeric port to start the range']);
  assert.deepEqual(errors(ingressPort({ port: 80, endPort: 79 })), ['spec.ingress[0].ports[1].endPort: must be ≥ port (80), got 79']);
  assert.deepEqual(errors(ingressPort({ port: 'http', endPort: 90 })), ['spec.ingress[0].ports[1].endPort: cannot be used with a named port ("http")']);
  assert.deepEqual(errors(ingressPort({ port: 80, endPort: 65536 })), ['spec.ingress[0].ports[1].endPort: must be a port number 1..65535, got 65536']);
  assert.deepEqual(errors(ingressPort({ port: 80, endPort: '90' })), ['spec.ingress[0].ports[1].endPort: must be a number, got a string ("90")']);
  const same = ok(ingressPort({ port: 80, endPort: 80 })).policy.ingress[0]?.ports;
  assert.ok(same !== 'all' && same?.[1]?.port.kind === 'range');
});

test('ports: numbers in range, names valid, protocols TCP/UDP/SCTP', () => {
  assert.deepEqual(errors(ingressPort({ port: 0 })), ['spec.ingress[0].ports[1].port: must be a port number 1..65535, got 0']);
  assert.deepEqual(errors(ingressPort({ port: 65536 })), ['spec.ingress[0].ports[1].port: must be a port number 1..65535, got 65536']);
  assert.deepEqual(errors(ingressPort({ port: 80.5 })), ['spec.ingress[0].ports[1].port: must be a port number 1..65535, got 80.5']);
  assert.deepEqual(errors(ingressPort({ port: '80' })), [
    'spec.ingress[0].ports[1].port: port name "80" must contain a letter (a port number is written without quotes)',
  ]);
  assert.deepEqual(errors(ingressPort({ port: 'Serve_80' })), ['spec.ingress[0].ports[1].port: port name "Serve_80" must be lowercase alphanumerics or "-"']);
  assert.deepEqual(errors(ingressPort({ port: true })), ['spec.ingress[0].ports[1].port: must be a port number or name, got a boolean (true)']);
  assert.deepEqual(errors(ingressPort({ protocol: 'tcp', port: 80 })), [
    'spec.ingress[0].ports[1].protocol: unsupported protocol a string ("tcp"); want TCP, UDP, SCTP (protocols are upper case: TCP)',
  ]);
  assert.deepEqual(errors(ingressPort({ protocol: 'ICMP' })), ['spec.ingress[0].ports[1].protocol: unsupported protocol a string ("ICMP"); want TCP, UDP, SCTP']);
  assert.deepEqual(errors(ingressPort('80')), ['spec.ingress[0].ports[1]: must be an object {protocol, port, endPort}, got a string ("80")']);
});

test('peers: one kind, ipBlock alone, selectors valid', () => {
  const peer = (p: unknown): unknown => policyWith({ podSelector: {}, ingress: [{ from: [p] }] });
  assert.deepEqual(errors(peer({})), ['spec.ingress[0].from[0]: a peer needs podSelector, namespaceSelector or ipBlock']);
  assert.deepEqual(errors(peer({ podSelector: null })), ['spec.ingress[0].from[0]: a peer needs podSelector, namespaceSelector or ipBlock']);
  assert.deepEqual(errors(peer({ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} })), [
    'spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or namespaceSelector in one peer',
  ]);
  assert.deepEqual(errors(peer({ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In' }] } })), [
    'spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: operator In needs at least one value',
  ]);
  assert.deepEqual(errors(peer('pod=a')), ['spec.ingress[0].from[0]: must be a peer object, got a string ("pod=a")']);
  assert.deepEqual(errors(policyWith({ podSelector: {}, ingress: [{ from: {} }] })), ['spec.ingress[0].from: must be a list, got an object']);
  assert.deepEqual(errors(policyWith({ podSelector: {}, ingress: ['all'] })), ['spec.ingress[0]: must be a rule object, got a string ("all")']);
});

test('ipBlock: valid CIDRs, except strictly inside cidr', () => {
  const block = (b: unknown): unknown => policyWith({ podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: b }] }] });
  assert.deepEqual(errors(block({ cidr: '10.0.0.0/33' })), ['spec.egress[0].to[0].ipBlock.cidr: "/33" is not a prefix length 0..32']);
  assert.deepEqual(errors(block({ cidr: '10.0.0.256/8' })), ['spec.egress[0].to[0].ipBlock.cidr: "10.0.0.256" is not a valid IPv4 address (want a.b.c.d, no leading zeros)']);
  assert.deepEqual(errors(block({ cidr: '10.0.0.1' })), ['spec.egress[0].to[0].ipBlock.cidr: "10.0.0.1" is not a CIDR (want address/prefix-length)']);
  assert.deepEqual(errors(block({ except: [] })), ['spec.egress[0].to[0].ipBlock.cidr: cidr is required']);
  assert.deepEqual(errors(block({ cidr: '10.0.0.0/8', except: ['11.0.0.0/16', '10.0.0.0/8', '10.1.0.0/16', 'x', 5] })), [
    'spec.egress[0].to[0].ipBlock.except[0]: 11.0.0.0/16 must be a strict subset of cidr 10.0.0.0/8',
    'spec.egress[0].to[0].ipBlock.except[1]: 10.0.0.0/8 must be a strict subset of cidr 10.0.0.0/8',
    'spec.egress[0].to[0].ipBlock.except[3]: "x" is not a CIDR (want address/prefix-length)',
    'spec.egress[0].to[0].ipBlock.except[4]: must be a CIDR string, got a number (5)',
  ]);
  assert.deepEqual(errors(block({ cidr: '10.0.0.0/8', except: ['2001:db8::/64'] })), [
    'spec.egress[0].to[0].ipBlock.except[0]: 2001:db8::/64 must be a strict subset of cidr 10.0.0.0/8',
  ]);
});

test('ipBlock: host bits are masked and IPv6 matches no traffic, both with warnings', () => {
  const { policy, warnings } = ok(
    policyWith({ podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.9.0.1/16', except: ['10.9.1.1/24'] } }, { ipBlock: { cidr: '2001:db8::/32' } }] }] }),
  );
  const peers = policy.egress[0]?.peers;
  assert.ok(peers !== 'all' && peers?.[0]?.kind === 'ipBlock');
  assert.equal(formatCidr(peers[0].cidr), '10.9.0.0/16');
  assert.deepEqual(peers[0].except.map(formatCidr), ['10.9.1.0/24']);
  assert.deepEqual(warnings, [
    'spec.egress[0].to[0].ipBlock.cidr: 10.9.0.1/16 has host bits set; it means 10.9.0.0/16',
    'spec.egress[0].to[0].ipBlock.except[0]: 10.9.1.1/24 has host bits set; it means 10.9.1.0/24',
    'spec.egress[0].to[1].ipBlock.cidr: an IPv6 block matches no traffic: the Sluice datapath carries IPv4 only',
  ]);
});

test('every problem of an object is reported at once', () => {
  const all = errors(
    policyWith(
      {
        podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
        policyTypes: ['Sideways'],
        ingress: [{ ports: [{ port: 80, endPort: 70 }, { protocol: 'QUIC' }] }],
        egress: [{ to: [{ ipBlock: { cidr: 'nope' } }] }],
      },
      { name: 'p', namespace: 'x' },
    ),
  );
  assert.equal(all.length, 5, all.join('\n'));
});

test('client-node style objects: unset fields are own properties holding undefined', () => {
  class V1NetworkPolicyPort {
    protocol?: string = undefined;
    port?: number | string = undefined;
    endPort?: number = undefined;
  }
  const p = new V1NetworkPolicyPort();
  p.port = 80;
  const { policy } = ok(policyWith({ podSelector: { matchLabels: undefined, matchExpressions: undefined }, ingress: [{ from: undefined, ports: [p] }], egress: undefined }));
  assert.deepEqual(policy.ingress[0]?.ports, [{ protocol: 'TCP', port: { kind: 'range', from: 80, to: 80 } }]);
});
