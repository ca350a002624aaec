/**
 * The Service acceptance checks (test/lb/helpers/acceptance.ts) against the
 * real kube-proxy in nftables mode on the same one-node cluster lab (agents
 * with Services off, as on two nodes). The iptables mode runs on two nodes.
 */
import { acceptanceSuite } from './helpers/acceptance.js';

acceptanceSuite('kube-proxy-nftables', 1);
