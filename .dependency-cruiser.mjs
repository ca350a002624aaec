// Import rules that lint checks (scripts/test, `npm run lint`): the layers of
// CONTRIBUTING.md ("Layers") as a machine reads them. A violation prints "error <rule>: <from> → <to>" and fails the
// run. test/lint/layers.test.ts proves each rule fires on a fixture tree.

/** npm packages src/policy and src/lb may use: pure computation, no I/O. */
const PURE_PACKAGES = ['yaml'];

/**
 * A rule: modules under `from` import nothing of the agent, the CNI, the lab or the CLI.
 * @param {string} name @param {string} from @param {string} comment
 * @returns {import('dependency-cruiser').IForbiddenRuleType}
 */
function belowAgentCniLabCli(name, from, comment) {
  return { name, severity: 'error', comment, from: { path: from }, to: { path: '^src/(agent|cni|lab|cli)/' } };
}

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycle anywhere: a cycle makes two modules one, whatever the folders say.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'pure-policy-lb',
      severity: 'error',
      comment:
        'src/policy and src/lb are pure (snapshot in, entries out): they import their own folder, the generated ' +
        `ABI (src/datapath/generated/abi.ts) and the pure packages ${PURE_PACKAGES.join(', ')}; no node built-in, ` +
        'no native addon, no other src/datapath module.',
      from: { path: '^src/(policy|lb)/' },
      to: {
        pathNot: [
          '^src/$1/',
          '^src/datapath/generated/abi\\.ts$',
          ...PURE_PACKAGES.map((p) => `^node_modules/${p}/`),
        ],
      },
    },
    {
      name: 'generated-abi-is-a-leaf',
      severity: 'error',
      comment: 'The generated ABI imports only the Codec type (src/datapath/api.ts), so that importing it stays pure.',
      from: { path: '^src/datapath/generated/' },
      to: { pathNot: ['^src/datapath/generated/', '^src/datapath/api\\.ts$'] },
    },
    belowAgentCniLabCli('datapath-below-agent-cni-lab-cli', '^src/datapath/',
      'src/datapath wraps the kernel for everyone above it: it imports no agent, CNI, lab or CLI code.'),
    {
      name: 'cni-below-agent',
      severity: 'error',
      comment: 'The CNI plugin runs inside the agent and without it: it imports no src/agent code.',
      from: { path: '^src/cni/' },
      to: { path: '^src/agent/' },
    },
    {
      name: 'pure-flow',
      severity: 'error',
      comment:
        'The flow pipeline\'s pure parts (src/flow/*.ts: model, enrichment, ring, filters, observer, printing) import ' +
        'their own folder, src/policy, the generated ABI and the applied view: no node built-in, no gRPC, no file; ' +
        'the wire format (src/flow/wire) and the servers and clients (src/flow/server) hold the I/O.',
      from: { path: '^src/flow/[^/]+\\.ts$' },
      to: {
        pathNot: [
          '^src/flow/[^/]+\\.ts$',
          '^src/policy/',
          '^src/datapath/generated/abi\\.ts$',
          '^src/reconcile/applied-view\\.ts$',
        ],
      },
    },
    belowAgentCniLabCli('flow-below-agent-cni-lab-cli', '^src/flow/',
      'The flow pipeline serves the agent and the CLI alike: it imports no agent, CNI, lab or CLI code.'),
    belowAgentCniLabCli('reconcile-below-agent-cni-lab-cli', '^src/reconcile/',
      'Reconcilers own maps for the agent and the lab alike: they import no agent, CNI, lab or CLI code.'),
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import the checker cannot resolve is an import it cannot check.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: '^node_modules/' },
    // The layer fixtures break these rules on purpose; test/lint/layers.test.ts cruises them on their own.
    exclude: { path: ['^(dist|build|node_modules|native)/', '^test/lint/fixtures/'] },
    // Type-only imports count: a type import is a dependency on the module's meaning.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
