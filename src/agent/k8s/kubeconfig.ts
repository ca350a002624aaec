/**
 * The client-node KubeConfig for the agent: from a kubeconfig file, or the
 * pod's service account (in-cluster: token and CA under
 * /var/run/secrets/kubernetes.io/serviceaccount, server from
 * KUBERNETES_SERVICE_HOST/PORT). Errors name the setting.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { AgentError, asError } from '../errors.js';

export interface KubeConfigSource {
  readonly kubeconfig?: string;
  readonly inCluster: boolean;
}

export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (source.kubeconfig !== undefined) kc.loadFromFile(source.kubeconfig);
    else if (source.inCluster) kc.loadFromCluster();
    else throw new Error('neither a kubeconfig nor in-cluster config was given');
  } catch (e) {
    const field = source.kubeconfig !== undefined ? 'kubeconfig' : 'inCluster';
    throw new AgentError('invalid-config', `${field}: cannot load ${source.kubeconfig ?? 'the in-cluster config'}: ${asError(e).message}`, field);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null || cluster.server === '') {
    const field = source.kubeconfig !== undefined ? 'kubeconfig' : 'inCluster';
    throw new AgentError('invalid-config', `${field}: ${source.kubeconfig ?? 'the in-cluster config'} has no current cluster with a server URL`, field);
  }
  return kc;
}
