/**
 * Load-balancer test fixtures: Services, slices and endpoints in src/lb's
 * model, and a pin dir /sys/fs/bpf/sluice-lba-* holding the maps of lxc.o
 * (removed in finally).
 */
import { removePinDir } from '../../src/datapath/bpffs.js';
import { openObject } from '../../src/datapath/bpf-object.js';
import { LXC_OBJECT_PATH } from '../../src/datapath/lxc.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import type { EndpointSlice, Service, SliceEndpoint } from '../../src/lb/model.js';
import { createTestPinRoot } from './pins.js';

/** A ClusterIP Service ns/<name> with one TCP port "http" 80. */
export function lbService(name: string, clusterIP: string, extra: Partial<Service> = {}): Service {
  return {
    namespace: 'ns', name, labels: {}, type: 'ClusterIP', clusterIPs: [clusterIP],
    ports: [{ name: 'http', protocol: 'TCP', port: 80 }], externalIPs: [], loadBalancerIPs: [],
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ...extra,
  };
}

/** A Ready endpoint on node n2 unless told otherwise. */
export function lbEndpoint(ip: string, c: Partial<SliceEndpoint> = {}): SliceEndpoint {
  return { addresses: [ip], ready: true, serving: true, terminating: false, nodeName: 'n2', ...c };
}

/** An IPv4 slice of ns/<service> with port "http" at `port`. */
export function lbSlice(service: string, endpoints: SliceEndpoint[], name = `${service}-1`, port = 8080): EndpointSlice {
  return { namespace: 'ns', name, serviceName: service, addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port }], endpoints };
}

/** A fresh sluice-lba-* pin dir with lxc.o's maps (sized by pin name where `maxEntries` says), removed afterwards. */
export function withLbMaps<T>(fn: (maps: PinnedDatapathMaps, pinDir: string) => T, maxEntries: Record<string, number> = {}): T {
  const pinDir = createLbPinDir(maxEntries);
  try {
    const maps = openPinnedDatapathMaps(pinDir);
    try {
      return fn(maps, pinDir);
    } finally {
      maps.close();
    }
  } finally {
    removePinDir(pinDir);
  }
}

/** An empty sluice-lba-* pin dir (for LxcHarness, which loads lxc.o into it); the caller removes it (removePinDir). */
export function createLbaPinRoot(): string {
  return createTestPinRoot('sluice-lba');
}

/** A sluice-lba-* pin dir with lxc.o's maps; the caller removes it (removePinDir). */
export function createLbPinDir(maxEntries: Record<string, number> = {}): string {
  const pinDir = createLbaPinRoot();
  try {
    openObject(LXC_OBJECT_PATH, { pinRoot: pinDir, maxEntries }).close();
  } catch (e) {
    removePinDir(pinDir);
    throw e;
  }
  return pinDir;
}
