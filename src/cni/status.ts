/**
 * STATUS (spec 1.1): can this node take an ADD now?
 *   50  the agent does not answer, is not ready (informers still listing,
 *       first sync not in the maps), or there is no pod CIDR to allocate from;
 *   51  the agent answers but map updates are failing: new pods cannot be
 *       admitted, and existing pods may be limited (their endpoints fail
 *       closed until the maps take the change).
 * Success prints nothing.
 */
import type { CniAgent } from './agent.js';
import type { NetConf } from './config.js';
import { CniCode, CniError } from './errors.js';
import { resolvePodCidrs } from './pod-cidr.js';

export async function cmdStatus(conf: NetConf, agent: CniAgent): Promise<void> {
  let report;
  try {
    report = await agent.status();
  } catch (e) {
    throw new CniError(CniCode.NOT_AVAILABLE, (e as Error).message);
  }
  if (!report.ready) {
    const failing = report.checks.filter((c) => !c.ok);
    const detail = failing.map((c) => `${c.name}: ${c.detail}`).join('; ');
    const mapsFailing = failing.some((c) => c.name === 'datapath' && /map updates failing/.test(c.detail));
    throw new CniError(mapsFailing ? CniCode.LIMITED_CONNECTIVITY : CniCode.NOT_AVAILABLE, `sluice-agent is not ready: ${detail}`);
  }
  try {
    await resolvePodCidrs(conf, agent);
  } catch (e) {
    throw new CniError(CniCode.NOT_AVAILABLE, `cannot allocate pod addresses: ${(e as Error).message}`);
  }
}
