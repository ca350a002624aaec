/**
 * The conformance cases, after the upstream Kubernetes netpol e2e suite
 * (test/e2e/network/netpol/network_policy.go): the x/y/z × a/b/c cluster of
 * ./xyz.ts, each case a set of static policies and, per probe (port,
 * protocol), the full 9×9 truth table. Shared by the model's conformance
 * test, the compiled-state test and the BPF engine's.
 *
 * Tables: one row per source, one column per destination, both in the order
 * x/a x/b x/c  y/a y/b y/c  z/a z/b z/c; "." = allowed, "X" = denied; spaces
 * only group namespaces. Unlike upstream, which ignores loopback, the
 * diagonal is asserted too: the engines answer it by the rules.
 *
 * Upstream cases that change objects while the test runs ("updated policy",
 * "updated namespace/pod", "stop enforcing after deletion") appear as their
 * static before/after states. Every case names the upstream test it follows,
 * or "sluice" for corners upstream does not probe.
 */
import assert from 'node:assert/strict';
import type { NetworkPolicy } from '../../src/policy/k8s-types.js';
import type { TrafficProtocol } from '../../src/policy/match.js';
import { ALL, netpol, ns, nsName, pod, PODS, type XyzOptions } from './xyz.js';

export interface Probe {
  readonly port: number;
  readonly protocol: TrafficProtocol;
  /** 9 rows (from) of 9 columns (to). */
  readonly expect: readonly string[];
}

export interface Case {
  readonly name: string;
  /** The upstream test title this case follows, or "sluice". */
  readonly upstream: string;
  readonly policies: readonly NetworkPolicy[];
  readonly cluster?: XyzOptions;
  readonly probes: readonly Probe[];
}

const OPEN = [
  '... ... ...', // x/a
  '... ... ...', // x/b
  '... ... ...', // x/c
  '... ... ...', // y/a
  '... ... ...', // y/b
  '... ... ...', // y/c
  '... ... ...', // z/a
  '... ... ...', // z/b
  '... ... ...', // z/c
];
/** Nothing reaches any pod of x. */
const X_CLOSED = [
  'XXX ... ...',
  'XXX ... ...',
  'XXX ... ...',
  'XXX ... ...',
  'XXX ... ...',
  'XXX ... ...',
  'XXX ... ...',
  'XXX ... ...',
  'XXX ... ...',
];
/** Nothing reaches x/a. */
const XA_CLOSED = [
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
];
/** Only x/b reaches x/a. */
const XA_FROM_XB = [
  'X.. ... ...',
  '... ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
];
/** Only pods of y reach x/a. */
const XA_FROM_Y = [
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
  '... ... ...',
  '... ... ...',
  '... ... ...',
  'X.. ... ...',
  'X.. ... ...',
  'X.. ... ...',
];
/** Pods of x reach nothing. */
const X_EGRESS_CLOSED = [
  'XXX XXX XXX',
  'XXX XXX XXX',
  'XXX XXX XXX',
  '... ... ...',
  '... ... ...',
  '... ... ...',
  '... ... ...',
  '... ... ...',
  '... ... ...',
];

const denyIngress = (namespace: string, name = 'deny-ingress'): NetworkPolicy =>
  netpol(namespace, name, { podSelector: ALL, policyTypes: ['Ingress'], ingress: [] });

export const CASES: readonly Case[] = [
  {
    name: 'no policies: everything is allowed',
    upstream: 'should stop enforcing policies after they are deleted (after)',
    policies: [],
    probes: [
      { port: 80, protocol: 'TCP', expect: OPEN },
      { port: 81, protocol: 'UDP', expect: OPEN },
      { port: 80, protocol: 'SCTP', expect: OPEN },
    ],
  },
  {
    name: 'default-deny-ingress',
    upstream: "should support a 'default-deny-ingress' policy (TCP, UDP, SCTP)",
    policies: [denyIngress('x')],
    probes: [
      { port: 80, protocol: 'TCP', expect: X_CLOSED },
      { port: 80, protocol: 'UDP', expect: X_CLOSED },
      { port: 80, protocol: 'SCTP', expect: X_CLOSED },
      { port: 0, protocol: 'ICMP', expect: X_CLOSED },
    ],
  },
  {
    name: 'default-deny-all',
    upstream: "should support a 'default-deny-all' policy; should stop enforcing policies after they are deleted (before)",
    policies: [netpol('x', 'deny-all', { podSelector: ALL, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'XXX XXX XXX',
          'XXX XXX XXX',
          'XXX XXX XXX',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
        ],
      },
    ],
  },
  {
    name: 'allow x/a from x/b by podSelector',
    upstream: 'should enforce policy to allow traffic from pods within server namespace based on PodSelector',
    policies: [netpol('x', 'x-a-allows-x-b', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }] }] })],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_FROM_XB }],
  },
  {
    name: 'deny-all ingress plus allow-all to x/a',
    upstream: 'should enforce policy to allow ingress traffic for a target',
    policies: [
      denyIngress('x', 'deny-all'),
      netpol('x', 'allow-all-to-a', {
        podSelector: pod('a'),
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: ALL, namespaceSelector: ALL }] }],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
        ],
      },
    ],
  },
  {
    name: 'x/a from all namespaces (empty namespaceSelector)',
    upstream: 'should enforce policy to allow ingress traffic from pods in all namespaces',
    policies: [netpol('x', 'allow-from-another-ns', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: {} } }] }] })],
    probes: [{ port: 80, protocol: 'TCP', expect: OPEN }],
  },
  {
    name: 'x/a only from namespace y (custom namespace label)',
    upstream: 'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector',
    policies: [netpol('x', 'allow-client-a-via-ns-selector', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: ns('y') }] }] })],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_FROM_Y }],
  },
  {
    name: 'x/a only from namespace y (kubernetes.io/metadata.name, defaulted)',
    upstream: 'should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label',
    policies: [netpol('x', 'allow-ns-y-immutable-label', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: nsName('y') }] }] })],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_FROM_Y }],
  },
  {
    name: 'podSelector with matchExpressions In',
    upstream: 'should enforce policy based on PodSelector with MatchExpressions',
    policies: [
      netpol('x', 'x-a-allows-x-b', {
        podSelector: pod('a'),
        ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b'] }] } }] }],
      }),
    ],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_FROM_XB }],
  },
  {
    name: 'namespaceSelector with matchExpressions In',
    upstream: 'should enforce policy based on NamespaceSelector with MatchExpressions',
    policies: [
      netpol('x', 'allow-ns-y-match-selector', {
        podSelector: pod('a'),
        ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In', values: ['y'] }] } }] }],
      }),
    ],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_FROM_Y }],
  },
  {
    name: 'podSelector OR namespaceSelector (two peers)',
    upstream: 'should enforce policy based on PodSelector or NamespaceSelector',
    policies: [
      netpol('x', 'allow-ns-not-x-or-pod-b', {
        podSelector: pod('a'),
        ingress: [
          {
            from: [
              { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x'] }] } },
              { podSelector: pod('b') },
            ],
          },
        ],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.. ... ...',
          '... ... ...',
          'X.. ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'podSelector AND namespaceSelector (one peer)',
    upstream: 'should enforce policy based on PodSelector and NamespaceSelector',
    policies: [
      netpol('x', 'allow-ns-not-x-and-pod-b', {
        podSelector: pod('a'),
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x'] }] },
                podSelector: pod('b'),
              },
            ],
          },
        ],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          '... ... ...',
          'X.. ... ...',
          'X.. ... ...',
          '... ... ...',
          'X.. ... ...',
        ],
      },
    ],
  },
  {
    name: 'multiple pods AND namespaces by matchExpressions',
    upstream: 'should enforce policy based on Multiple PodSelectors and NamespaceSelectors',
    policies: [
      netpol('x', 'allow-ns-y-z-pod-b-c', {
        podSelector: pod('a'),
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x'] }] },
                podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] },
              },
            ],
          },
        ],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          '... ... ...',
          '... ... ...',
          'X.. ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'any of several podSelectors',
    upstream: 'should enforce policy based on any PodSelectors',
    policies: [
      netpol('x', 'allow-ns-x-pod-b-c', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }, { podSelector: pod('c') }] }] }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.. ... ...',
          '... ... ...',
          '... ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
        ],
      },
    ],
  },
  {
    name: 'only y/a reaches x/a (pod AND namespace by matchLabels)',
    upstream: 'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector (TCP, UDP, SCTP)',
    policies: [
      netpol('x', 'allow-ns-y-pod-a', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: nsName('y'), podSelector: pod('a') }] }] }),
    ],
    probes: (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
      port: 80,
      protocol,
      expect: [
        'X.. ... ...',
        'X.. ... ...',
        'X.. ... ...',
        '... ... ...',
        'X.. ... ...',
        'X.. ... ...',
        'X.. ... ...',
        'X.. ... ...',
        'X.. ... ...',
      ],
    })),
  },
  {
    name: 'one port (81) from namespace y',
    upstream: 'should enforce policy based on Ports (TCP, UDP, SCTP)',
    policies: [
      netpol('x', 'allow-81-from-y', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: ns('y') }], ports: [{ port: 81, protocol: 'TCP' }] }] }),
      netpol('x', 'allow-81-udp-from-y', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: ns('y') }], ports: [{ port: 81, protocol: 'UDP' }] }] }),
      netpol('x', 'allow-81-sctp-from-y', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: ns('y') }], ports: [{ port: 81, protocol: 'SCTP' }] }] }),
    ],
    probes: [
      { port: 81, protocol: 'TCP', expect: XA_FROM_Y },
      { port: 81, protocol: 'UDP', expect: XA_FROM_Y },
      { port: 81, protocol: 'SCTP', expect: XA_FROM_Y },
      { port: 80, protocol: 'TCP', expect: XA_CLOSED },
      { port: 80, protocol: 'UDP', expect: XA_CLOSED },
    ],
  },
  {
    name: 'stacked policies with overlapping podSelectors add up',
    upstream: 'should enforce multiple, stacked policies with overlapping podSelectors',
    policies: [
      netpol('x', 'allow-81', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: ns('y') }], ports: [{ port: 81, protocol: 'TCP' }] }] }),
      netpol('x', 'allow-80', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: ns('y') }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
    ],
    probes: [
      { port: 80, protocol: 'TCP', expect: XA_FROM_Y },
      { port: 81, protocol: 'TCP', expect: XA_FROM_Y },
      { port: 82, protocol: 'TCP', expect: XA_CLOSED },
    ],
  },
  {
    name: 'allow-all ingress',
    upstream: 'should support allow-all policy; should enforce updated policy (before)',
    policies: [netpol('x', 'allow-all', { podSelector: { matchLabels: {} }, ingress: [{}] })],
    probes: [
      { port: 80, protocol: 'TCP', expect: OPEN },
      { port: 81, protocol: 'TCP', expect: OPEN },
      { port: 81, protocol: 'UDP', expect: OPEN },
      { port: 0, protocol: 'ICMP', expect: OPEN },
    ],
  },
  {
    name: 'ingress on one named port',
    upstream: 'should allow ingress access on one named port',
    policies: [netpol('x', 'allow-serve-81-tcp', { podSelector: ALL, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })],
    probes: [
      { port: 81, protocol: 'TCP', expect: OPEN },
      { port: 80, protocol: 'TCP', expect: X_CLOSED },
      { port: 81, protocol: 'UDP', expect: X_CLOSED },
    ],
  },
  {
    name: 'ingress from namespace y on one named port',
    upstream: 'should allow ingress access from namespace on one named port',
    policies: [
      netpol('x', 'allow-y-serve-80-tcp', {
        podSelector: pod('a'),
        ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 'serve-80-tcp', protocol: 'TCP' }] }],
      }),
    ],
    probes: [
      { port: 80, protocol: 'TCP', expect: XA_FROM_Y },
      { port: 81, protocol: 'TCP', expect: XA_CLOSED },
    ],
  },
  {
    name: 'egress on one named port (resolved on the destination)',
    upstream: 'should allow egress access on one named port',
    policies: [netpol('x', 'allow-egress-serve-80-tcp', { podSelector: ALL, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })],
    probes: [
      { port: 80, protocol: 'TCP', expect: OPEN },
      { port: 81, protocol: 'TCP', expect: X_EGRESS_CLOSED },
    ],
  },
  {
    name: 'empty ingress list without policyTypes isolates',
    upstream: 'should enforce updated policy (after)',
    policies: [netpol('x', 'allow-all-mutate-to-deny-all', { podSelector: ALL, ingress: [] })],
    probes: [{ port: 81, protocol: 'TCP', expect: X_CLOSED }],
  },
  {
    name: 'namespace label not yet added',
    upstream: 'should allow ingress access from updated namespace (before)',
    policies: [netpol('x', 'allow-ns2-updated', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }] })],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_CLOSED }],
  },
  {
    name: 'namespace label added',
    upstream: 'should allow ingress access from updated namespace (after)',
    policies: [netpol('x', 'allow-ns2-updated', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }] })],
    cluster: { namespaceLabels: { y: { ns2: 'updated' } } },
    probes: [{ port: 80, protocol: 'TCP', expect: XA_FROM_Y }],
  },
  {
    name: 'pod label not yet added',
    upstream: 'should allow ingress access from updated pod (before)',
    policies: [netpol('x', 'allow-pod2-updated', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }] })],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_CLOSED }],
  },
  {
    name: 'pod label added',
    upstream: 'should allow ingress access from updated pod (after)',
    policies: [netpol('x', 'allow-pod2-updated', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }] })],
    cluster: { podLabels: { 'x/b': { pod2: 'updated' } } },
    probes: [{ port: 80, protocol: 'TCP', expect: XA_FROM_XB }],
  },
  {
    name: 'ingress only from the own namespace',
    upstream: 'should deny ingress from pods on other namespaces',
    policies: [netpol('x', 'deny-empty-policy', { podSelector: ALL, ingress: [{ from: [{ podSelector: { matchLabels: {} } }] }] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          '... ... ...',
          '... ... ...',
          '... ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
        ],
      },
    ],
  },
  {
    name: 'isolating label not yet on the pod',
    upstream: 'should deny ingress access to updated pod (before)',
    policies: [netpol('x', 'deny-ingress-via-label-selector', { podSelector: { matchLabels: { target: 'isolated' } }, policyTypes: ['Ingress'], ingress: [] })],
    probes: [{ port: 80, protocol: 'TCP', expect: OPEN }],
  },
  {
    name: 'isolating label on the pod',
    upstream: 'should deny ingress access to updated pod (after)',
    policies: [netpol('x', 'deny-ingress-via-label-selector', { podSelector: { matchLabels: { target: 'isolated' } }, policyTypes: ['Ingress'], ingress: [] })],
    cluster: { podLabels: { 'x/a': { target: 'isolated' } } },
    probes: [{ port: 80, protocol: 'TCP', expect: XA_CLOSED }],
  },
  {
    name: 'deny egress of x/a',
    upstream: 'should deny egress from pods based on PodSelector',
    policies: [netpol('x', 'deny-egress-pod-a', { podSelector: pod('a'), policyTypes: ['Egress'], egress: [] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'XXX XXX XXX',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'deny egress of every pod of x',
    upstream: 'should deny egress from all pods in a namespace',
    policies: [netpol('x', 'deny-egress-ns-x', { podSelector: ALL, policyTypes: ['Egress'], egress: [] })],
    probes: [{ port: 80, protocol: 'TCP', expect: X_EGRESS_CLOSED }],
  },
  {
    name: 'ingress and egress in one policy',
    upstream: 'should work with Ingress, Egress specified together',
    policies: [
      netpol('x', 'allow-client-a-via-pod-selector', {
        podSelector: pod('a'),
        policyTypes: ['Egress', 'Ingress'],
        ingress: [{ from: [{ podSelector: pod('b') }] }],
        egress: [{ ports: [{ port: 80 }] }],
      }),
    ],
    probes: [
      { port: 80, protocol: 'TCP', expect: XA_FROM_XB },
      {
        port: 81,
        protocol: 'TCP',
        expect: [
          'XXX XXX XXX',
          '... ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
        ],
      },
    ],
  },
  {
    name: "the client's egress denies what the server's ingress allows",
    upstream: 'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)',
    policies: [
      netpol('x', 'allow-to-ns-y-pod-a', {
        podSelector: pod('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: pod('a') }] }],
      }),
      netpol('y', 'allow-from-xa-on-ya', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: pod('a') }] }] }),
      netpol('y', 'allow-from-xa-on-yb', { podSelector: pod('b'), ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: pod('a') }] }] }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'XXX .XX XXX',
          '... XX. ...',
          '... XX. ...',
          '... XX. ...',
          '... XX. ...',
          '... XX. ...',
          '... XX. ...',
          '... XX. ...',
          '... XX. ...',
        ],
      },
    ],
  },
  {
    name: 'egress only to y/a (pod AND namespace)',
    upstream: 'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector',
    policies: [
      netpol('x', 'allow-to-ns-y-pod-a', {
        podSelector: pod('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: pod('a') }] }],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'XXX .XX XXX',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'any port of one protocol',
    upstream: 'should enforce ingress policy allowing any port traffic to a server on a specific protocol',
    policies: [netpol('x', 'allow-ingress-by-proto', { podSelector: pod('a'), ingress: [{ ports: [{ protocol: 'TCP' }] }] })],
    probes: [
      { port: 80, protocol: 'TCP', expect: OPEN },
      { port: 81, protocol: 'TCP', expect: OPEN },
      { port: 80, protocol: 'UDP', expect: XA_CLOSED },
      { port: 81, protocol: 'SCTP', expect: XA_CLOSED },
      { port: 0, protocol: 'ICMP', expect: XA_CLOSED },
    ],
  },
  {
    name: 'ingress port 80 only',
    upstream: 'should enforce multiple ingress policies with ingress allow-all policy taking precedence (before)',
    policies: [netpol('x', 'allow-ingress-port-80', { podSelector: ALL, ingress: [{ ports: [{ port: 80 }] }] })],
    probes: [
      { port: 81, protocol: 'TCP', expect: X_CLOSED },
      { port: 80, protocol: 'TCP', expect: OPEN },
    ],
  },
  {
    name: 'ingress port 80 plus allow-all ingress',
    upstream: 'should enforce multiple ingress policies with ingress allow-all policy taking precedence (after)',
    policies: [
      netpol('x', 'allow-ingress-port-80', { podSelector: ALL, ingress: [{ ports: [{ port: 80 }] }] }),
      netpol('x', 'allow-ingress', { podSelector: ALL, ingress: [{}] }),
    ],
    probes: [{ port: 81, protocol: 'TCP', expect: OPEN }],
  },
  {
    name: 'egress port 80 only',
    upstream: 'should enforce multiple egress policies with egress allow-all policy taking precedence (before)',
    policies: [netpol('x', 'allow-egress-port-80', { podSelector: ALL, policyTypes: ['Egress'], egress: [{ ports: [{ port: 80 }] }] })],
    probes: [
      { port: 81, protocol: 'TCP', expect: X_EGRESS_CLOSED },
      { port: 80, protocol: 'TCP', expect: OPEN },
    ],
  },
  {
    name: 'egress port 80 plus allow-all egress',
    upstream: 'should enforce multiple egress policies with egress allow-all policy taking precedence (after)',
    policies: [
      netpol('x', 'allow-egress-port-80', { podSelector: ALL, policyTypes: ['Egress'], egress: [{ ports: [{ port: 80 }] }] }),
      netpol('x', 'allow-egress', { podSelector: ALL, policyTypes: ['Egress'], egress: [{}] }),
    ],
    probes: [{ port: 81, protocol: 'TCP', expect: OPEN }],
  },
  {
    name: 'egress to one pod IP (ipBlock /32 matches a pod)',
    upstream: 'should allow egress access to server in CIDR block',
    policies: [
      netpol('x', 'allow-client-a-via-cidr-egress-rule', {
        podSelector: pod('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.9.1.2/32' } }] }],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'XXX X.X XXX',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'egress to a large CIDR except one pod IP',
    upstream: 'should enforce except clause while egress access to server in CIDR block',
    policies: [
      netpol('x', 'allow-client-a-via-cidr-egress-rule', {
        podSelector: pod('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/4', except: ['10.9.0.2/32'] } }] }],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          '.X. ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: "an IP in one policy's except and another policy's cidr is allowed",
    upstream: 'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed',
    policies: [
      netpol('x', 'allow-big-except-x-b', {
        podSelector: pod('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/4', except: ['10.9.0.2/32'] } }] }],
      }),
      netpol('x', 'allow-x-b', { podSelector: pod('a'), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.9.0.2/32' } }] }] }),
    ],
    probes: [{ port: 80, protocol: 'TCP', expect: OPEN }],
  },
  {
    name: 'the except policy replaced by an allow of that IP only',
    upstream: 'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed (after the update)',
    policies: [netpol('x', 'allow-client-a-via-cidr-egress-rule', { podSelector: pod('a'), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.9.0.2/32' } }] }] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.X XXX XXX',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'allow-all egress alone changes nothing',
    upstream: 'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector (step 1)',
    policies: [netpol('x', 'allow-egress-for-target', { podSelector: pod('a'), policyTypes: ['Egress'], egress: [{}] })],
    probes: [{ port: 80, protocol: 'TCP', expect: OPEN }],
  },
  {
    name: 'ingress and egress of one pod controlled independently',
    upstream: 'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector (step 2)',
    policies: [
      netpol('x', 'allow-egress-for-target', { podSelector: pod('a'), policyTypes: ['Egress'], egress: [{}] }),
      netpol('x', 'deny-ingress-via-label-selector', { podSelector: pod('a'), policyTypes: ['Ingress'], ingress: [] }),
    ],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_CLOSED }],
  },
  {
    name: 'SCTP is not TCP',
    upstream: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
    policies: [
      denyIngress('x'),
      netpol('x', 'allow-only-sctp-ingress-on-port-81', { podSelector: pod('a'), ingress: [{ ports: [{ port: 81, protocol: 'SCTP' }] }] }),
    ],
    probes: [
      { port: 81, protocol: 'TCP', expect: X_CLOSED },
      {
        port: 81,
        protocol: 'SCTP',
        expect: [
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
          '.XX ... ...',
        ],
      },
    ],
  },
  {
    name: 'a policy allowing only SCTP still isolates for TCP',
    upstream: "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
    policies: [netpol('x', 'allow-only-sctp-ingress-on-port-80', { podSelector: pod('a'), ingress: [{ ports: [{ port: 80, protocol: 'SCTP' }] }] })],
    probes: [
      { port: 81, protocol: 'TCP', expect: XA_CLOSED },
      { port: 80, protocol: 'TCP', expect: XA_CLOSED },
      { port: 80, protocol: 'SCTP', expect: OPEN },
    ],
  },
  {
    name: 'a policy allowing only UDP denies TCP',
    upstream: 'should not allow access by TCP when a policy specifies only UDP',
    policies: [netpol('x', 'allow-only-udp-ingress-on-port-81', { podSelector: pod('a'), ingress: [{ ports: [{ port: 81, protocol: 'UDP' }] }] })],
    probes: [
      { port: 81, protocol: 'TCP', expect: XA_CLOSED },
      { port: 81, protocol: 'UDP', expect: OPEN },
    ],
  },
  {
    name: 'egress to every namespace but y (NotIn on the default label)',
    upstream: 'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label',
    policies: [
      netpol('x', 'allow-ns-not-y', {
        podSelector: pod('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['y'] }] } }] }],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          '... XXX ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'deny all, egress only to UDP/53',
    upstream: 'policies.go GetDenyAllWithEgressDNS',
    policies: [
      netpol('x', 'deny-all-tcp-allow-dns', {
        podSelector: ALL,
        policyTypes: ['Egress', 'Ingress'],
        ingress: [],
        egress: [{ ports: [{ protocol: 'UDP', port: 53 }] }],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'XXX XXX XXX',
          'XXX XXX XXX',
          'XXX XXX XXX',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
        ],
      },
      { port: 53, protocol: 'UDP', expect: X_CLOSED },
    ],
  },
  {
    name: 'endPort range on ingress',
    upstream: 'sluice (endPort, KEP-2079)',
    policies: [netpol('x', 'allow-79-80', { podSelector: ALL, ingress: [{ ports: [{ protocol: 'TCP', port: 79, endPort: 80 }] }] })],
    probes: [
      { port: 80, protocol: 'TCP', expect: OPEN },
      { port: 79, protocol: 'TCP', expect: OPEN },
      { port: 81, protocol: 'TCP', expect: X_CLOSED },
      { port: 80, protocol: 'UDP', expect: X_CLOSED },
    ],
  },
  {
    name: 'endPort range on egress (UDP)',
    upstream: 'sluice (endPort, KEP-2079)',
    policies: [netpol('x', 'egress-udp-81-90', { podSelector: pod('a'), policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 81, endPort: 90 }] }] })],
    probes: [
      { port: 81, protocol: 'UDP', expect: OPEN },
      { port: 90, protocol: 'UDP', expect: OPEN },
      {
        port: 80,
        protocol: 'UDP',
        expect: [
          'XXX XXX XXX',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
      {
        port: 81,
        protocol: 'TCP',
        expect: [
          'XXX XXX XXX',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'one named port means different numbers on different pods (ingress)',
    upstream: 'sluice (named ports resolve per destination pod)',
    cluster: { extraPorts: { 'x/b': [{ name: 'web', containerPort: 80 }], 'x/c': [{ name: 'web', containerPort: 81 }] } },
    policies: [netpol('x', 'allow-web', { podSelector: ALL, ingress: [{ ports: [{ port: 'web' }] }] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.X ... ...',
          'X.X ... ...',
          'X.X ... ...',
          'X.X ... ...',
          'X.X ... ...',
          'X.X ... ...',
          'X.X ... ...',
          'X.X ... ...',
          'X.X ... ...',
        ],
      },
      {
        port: 81,
        protocol: 'TCP',
        expect: [
          'XX. ... ...',
          'XX. ... ...',
          'XX. ... ...',
          'XX. ... ...',
          'XX. ... ...',
          'XX. ... ...',
          'XX. ... ...',
          'XX. ... ...',
          'XX. ... ...',
        ],
      },
    ],
  },
  {
    name: 'an egress named port resolves on the destination pod',
    upstream: 'sluice (named ports resolve per destination pod)',
    cluster: { extraPorts: { 'x/b': [{ name: 'web', containerPort: 80 }], 'x/c': [{ name: 'web', containerPort: 81 }] } },
    policies: [netpol('y', 'egress-web', { podSelector: ALL, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'web' }] }] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          '... ... ...',
          '... ... ...',
          '... ... ...',
          'X.X XXX XXX',
          'X.X XXX XXX',
          'X.X XXX XXX',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'a named port of another protocol matches nothing',
    upstream: 'sluice (named port + protocol)',
    policies: [
      netpol('x', 'sctp-by-name', { podSelector: ALL, ingress: [{ ports: [{ port: 'serve-81-sctp', protocol: 'SCTP' }] }] }),
      netpol('x', 'sctp-name-as-tcp', { podSelector: ALL, ingress: [{ ports: [{ port: 'serve-80-sctp' }] }] }),
    ],
    probes: [
      { port: 81, protocol: 'SCTP', expect: OPEN },
      { port: 80, protocol: 'SCTP', expect: X_CLOSED },
      { port: 80, protocol: 'TCP', expect: X_CLOSED },
    ],
  },
  {
    name: 'ingress ipBlock with except also matches pod IPs',
    upstream: 'sluice (ipBlock on ingress)',
    policies: [netpol('x', 'from-10-9-not-y', { podSelector: pod('a'), ingress: [{ from: [{ ipBlock: { cidr: '10.9.0.0/16', except: ['10.9.1.0/24'] } }] }] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          '... ... ...',
          '... ... ...',
          '... ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          '... ... ...',
          '... ... ...',
          '... ... ...',
        ],
      },
    ],
  },
  {
    name: 'an ipBlock outside the pod network matches no pod',
    upstream: 'sluice (ipBlock on ingress)',
    policies: [netpol('x', 'from-192-168', { podSelector: pod('a'), ingress: [{ from: [{ ipBlock: { cidr: '192.168.0.0/16' } }] }] })],
    probes: [{ port: 80, protocol: 'TCP', expect: XA_CLOSED }],
  },
  {
    name: 'implied policyTypes: egress rules make it Ingress and Egress',
    upstream: 'sluice (policyTypes defaulting)',
    policies: [netpol('x', 'egress-in-x', { podSelector: pod('a'), egress: [{ to: [{ podSelector: ALL }] }] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.. XXX XXX',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
        ],
      },
    ],
  },
  {
    name: 'implied policyTypes: an empty egress list does not isolate egress',
    upstream: 'sluice (policyTypes defaulting)',
    policies: [netpol('x', 'empty-egress', { podSelector: ALL, egress: [] })],
    probes: [{ port: 80, protocol: 'TCP', expect: X_CLOSED }],
  },
  {
    name: 'explicit policyTypes [Egress] ignores ingress rules',
    upstream: 'sluice (policyTypes explicit)',
    policies: [netpol('x', 'egress-only', { podSelector: pod('a'), policyTypes: ['Egress'], ingress: [{ from: [{ podSelector: pod('b') }] }], egress: [{}] })],
    probes: [{ port: 80, protocol: 'TCP', expect: OPEN }],
  },
  {
    name: 'policies of three namespaces at once',
    upstream: 'sluice (independent namespaces)',
    policies: [
      denyIngress('x'),
      netpol('y', 'only-from-x', { podSelector: ALL, ingress: [{ from: [{ namespaceSelector: nsName('x') }] }] }),
      netpol('z', 'c-no-egress', { podSelector: pod('c'), policyTypes: ['Egress'], egress: [] }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'XXX ... ...',
          'XXX ... ...',
          'XXX ... ...',
          'XXX XXX ...',
          'XXX XXX ...',
          'XXX XXX ...',
          'XXX XXX ...',
          'XXX XXX ...',
          'XXX XXX XXX',
        ],
      },
    ],
  },
  {
    name: 'an empty from list means every source',
    upstream: 'sluice (empty list = omitted, as the API server stores it)',
    policies: [netpol('x', 'empty-from', { podSelector: pod('a'), ingress: [{ from: [], ports: [{ port: 81 }] }] })],
    probes: [
      { port: 81, protocol: 'TCP', expect: OPEN },
      { port: 80, protocol: 'TCP', expect: XA_CLOSED },
    ],
  },
  {
    name: 'empty namespaceSelector AND podSelector: that pod in every namespace',
    upstream: 'sluice (peer AND)',
    policies: [netpol('x', 'pod-b-anywhere', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: {}, podSelector: pod('b') }] }] })],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.. ... ...',
          '... ... ...',
          'X.. ... ...',
          'X.. ... ...',
          '... ... ...',
          'X.. ... ...',
          'X.. ... ...',
          '... ... ...',
          'X.. ... ...',
        ],
      },
    ],
  },
  {
    name: 'Exists and DoesNotExist',
    upstream: 'sluice (selector operators)',
    cluster: { podLabels: { 'x/b': { tier: 'web' }, 'y/c': { tier: 'db' } } },
    policies: [
      netpol('x', 'from-tiered', {
        podSelector: pod('a'),
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } }] }],
      }),
      netpol('y', 'from-untiered', {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] } }] }],
      }),
    ],
    probes: [
      {
        port: 80,
        protocol: 'TCP',
        expect: [
          'X.. ... ...',
          '... XXX ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
          '... XXX ...',
          'X.. ... ...',
          'X.. ... ...',
          'X.. ... ...',
        ],
      },
    ],
  },
  {
    name: 'ICMP passes only rules without ports',
    upstream: 'sluice (ICMP)',
    policies: [
      netpol('x', 'a-tcp-80', { podSelector: pod('a'), ingress: [{ ports: [{ port: 80 }] }] }),
      netpol('x', 'b-any-port', { podSelector: pod('b'), ingress: [{ from: [{ namespaceSelector: {} }] }] }),
    ],
    probes: [
      { port: 0, protocol: 'ICMP', expect: XA_CLOSED },
      { port: 80, protocol: 'TCP', expect: OPEN },
    ],
  },
];

/** "XXX ... ..." → [false, false, false, true, …]; checks the table's shape. */
export function parseTable(rows: readonly string[], where: string): boolean[][] {
  assert.equal(rows.length, PODS.length, `${where}: want ${PODS.length} rows, got ${rows.length}`);
  return rows.map((row, i) => {
    const cells = row.replace(/ /g, '');
    assert.match(cells, /^[.X]{9}$/, `${where}: row ${i} "${row}" must have 9 cells of "." or "X"`);
    return [...cells].map((c) => c === '.');
  });
}

/** The actual table, with every cell that differs from the expected one marked by "!". */
export function renderDiff(actual: boolean[][], expected: boolean[][]): string {
  const header = `      ${PODS.map((p) => p.replace('/', '')).join(' ')}`;
  const lines = actual.map((row, i) => {
    const cells = row.map((ok, j) => `${ok ? '.' : 'X'}${ok === expected[i]?.[j] ? ' ' : '!'}`);
    return `${PODS[i] ?? '?'}   ${cells.join(' ')}`;
  });
  return [header, ...lines].join('\n');
}
