/**
 * Command lines of the three components, as pure functions of their config so
 * that the choices are visible and testable in one place. Why each non-obvious
 * flag is there is said next to it.
 */

export interface EtcdConfig {
  readonly host: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
}

export function etcdArgs(c: EtcdConfig): string[] {
  const client = `http://${c.host}:${c.clientPort}`;
  const peer = `http://${c.host}:${c.peerPort}`;
  return [
    '--name=sluice',
    `--data-dir=${c.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=sluice=${peer}`,
    '--initial-cluster-state=new',
    // Test data on tmpfs: durability is worthless, fsync latency is not.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

export interface ApiserverConfig {
  readonly host: string;
  readonly securePort: number;
  readonly etcdUrl: string;
  readonly certDir: string;
  readonly tokenFile: string;
  readonly saPublicKeyFile: string;
  readonly saPrivateKeyFile: string;
  readonly serviceClusterIpRange: string;
  readonly extraArgs: readonly string[];
}

export function apiserverArgs(c: ApiserverConfig): string[] {
  return [
    `--etcd-servers=${c.etcdUrl}`,
    `--bind-address=${c.host}`,
    `--secure-port=${c.securePort}`,
    // No default route is needed with an explicit advertise address; the
    // "kubernetes" Endpoints reconciler would reject a loopback one, and no
    // pod here reaches the apiserver through that Service anyway.
    `--advertise-address=${c.host}`,
    '--endpoint-reconciler-type=none',
    // No TLS files: the apiserver self-signs into cert-dir (and reuses them on restart).
    `--cert-dir=${c.certDir}`,
    `--token-auth-file=${c.tokenFile}`,
    '--authorization-mode=RBAC',
    `--service-cluster-ip-range=${c.serviceClusterIpRange}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${c.saPublicKeyFile}`,
    `--service-account-signing-key-file=${c.saPrivateKeyFile}`,
    '--allow-privileged=true',
    // The ServiceAccount admission plugin rejects pods until the namespace's
    // "default" ServiceAccount exists, which races a Namespace and its Pods
    // applied together; pods here never use their token anyway.
    '--disable-admission-plugins=ServiceAccount',
    '--profiling=false',
    ...c.extraArgs,
  ];
}

/** Controllers that matter without kubelets: slices, namespace deletion, GC, default SAs. */
export const DEFAULT_CONTROLLERS: readonly string[] = [
  'endpointslice',
  'endpointslicemirroring',
  'namespace',
  'garbagecollector',
  'serviceaccount',
];

export interface ControllerManagerConfig {
  readonly host: string;
  readonly securePort: number;
  readonly kubeconfig: string;
  readonly certDir: string;
  readonly controllers: readonly string[];
  readonly serviceClusterIpRange: string;
  /** When set, the nodeipam controller allocates Node podCIDRs from it. */
  readonly clusterCidr?: string;
  readonly nodeCidrMaskSize?: number;
}

export function controllerManagerArgs(c: ControllerManagerConfig): string[] {
  const controllers = [...c.controllers];
  const ipam: string[] = [];
  if (c.clusterCidr !== undefined) {
    if (!controllers.includes('nodeipam')) controllers.push('nodeipam');
    ipam.push(
      '--allocate-node-cidrs=true',
      `--cluster-cidr=${c.clusterCidr}`,
      `--node-cidr-mask-size=${c.nodeCidrMaskSize ?? 24}`,
    );
  }
  return [
    `--kubeconfig=${c.kubeconfig}`,
    // Delegated authn/authz for its own /healthz etc.; without these it
    // warns and cannot check callers' tokens.
    `--authentication-kubeconfig=${c.kubeconfig}`,
    `--authorization-kubeconfig=${c.kubeconfig}`,
    '--leader-elect=false',
    `--bind-address=${c.host}`,
    `--secure-port=${c.securePort}`,
    `--cert-dir=${c.certDir}`,
    // Deliberately no nodelifecycle/podgc/taint eviction: with no kubelet they
    // would mark Nodes NotReady and evict or delete the hand-made pods.
    `--controllers=${controllers.join(',')}`,
    `--service-cluster-ip-range=${c.serviceClusterIpRange}`,
    ...ipam,
    '--profiling=false',
  ];
}
