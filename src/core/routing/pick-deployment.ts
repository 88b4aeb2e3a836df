import type { Deployment } from './deployment.js';

/**
 * Picks the deployment for the next request among those whose circuit lets requests through: the fewest
 * requests in flight per unit of weight; between equally loaded ones (always the case for one request at a time),
 * smooth weighted round robin (nginx), so that sequential traffic, too, is shared in proportion to the weights.
 * Returns null when every candidate's circuit is open.
 */
export function pickDeployment(candidates: readonly Deployment[], now: number): Deployment | null {
  let best: Deployment[] = [];
  let bestLoad = Infinity;
  for (const deployment of candidates) {
    if (!deployment.breaker.canTake(now)) continue;
    const load = deployment.outstanding / deployment.weight;
    if (load < bestLoad - 1e-9) {
      best = [deployment];
      bestLoad = load;
    } else if (Math.abs(load - bestLoad) <= 1e-9) {
      best.push(deployment);
    }
  }
  if (best.length === 0) return null;
  if (best.length === 1) return best[0];
  let total = 0;
  let chosen = best[0];
  for (const deployment of best) {
    deployment.credit += deployment.weight;
    total += deployment.weight;
    if (deployment.credit > chosen.credit) chosen = deployment;
  }
  chosen.credit -= total;
  return chosen;
}
