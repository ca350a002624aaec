/**
 * The workload a pod belongs to, from its controller owner reference, as
 * Hubble reports it: a ReplicaSet whose name is a Deployment's name plus the
 * pod's pod-template-hash label stands for that Deployment; any other
 * controller (StatefulSet, DaemonSet, Job, ReplicaSet made by hand) is the
 * workload itself. A pod without a controller has none. Pure.
 */

export interface Workload {
  readonly kind: string;
  readonly name: string;
}

export interface OwnerReference {
  readonly kind: string;
  readonly name: string;
  readonly controller?: boolean;
}

export function workloadOf(owners: readonly OwnerReference[], labels: Readonly<Record<string, string>>): Workload | undefined {
  const owner = owners.find((o) => o.controller === true) ?? (owners.length === 1 ? owners[0] : undefined);
  if (owner === undefined || owner.kind === '' || owner.name === '') return undefined;
  const hash = labels['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash !== undefined && hash !== '' && owner.name.endsWith(`-${hash}`)) {
    return { kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1) };
  }
  return { kind: owner.kind, name: owner.name };
}
