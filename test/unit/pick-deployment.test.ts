import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deployment, type DeploymentTarget } from '../../src/core/routing/deployment.js';
import { pickDeployment } from '../../src/core/routing/pick-deployment.js';

function deployment(name: string, weight: number): Deployment {
  const target = { name, local: false } as DeploymentTarget;
  return new Deployment(target, weight, { failures: 1, cooldownMs: 1000 });
}

test('sequential picks follow the weights (smooth weighted round robin)', () => {
  const a = deployment('a', 3);
  const b = deployment('b', 1);
  const picks = Array.from({ length: 8 }, () => pickDeployment([a, b], 0)!.target.name).join('');
  assert.equal(picks.split('').filter((name) => name === 'a').length, 6);
  assert.equal(picks, 'aabaaaba', 'interleaved, not in bursts');
});

test('the fewest outstanding requests per unit of weight wins', () => {
  const a = deployment('a', 2);
  const b = deployment('b', 1);
  a.outstanding = 3; // 1.5 per weight
  b.outstanding = 1; // 1 per weight
  assert.equal(pickDeployment([a, b], 0), b);
  b.outstanding = 2; // 2 per weight
  assert.equal(pickDeployment([a, b], 0), a);
});

test('open circuits are skipped; all open gives null', () => {
  const a = deployment('a', 1);
  const b = deployment('b', 1);
  a.breaker.fail(0);
  assert.equal(pickDeployment([a, b], 10), b);
  b.breaker.fail(0);
  assert.equal(pickDeployment([a, b], 10), null);
  assert.equal(pickDeployment([a, b], 1000), a, 'the half-open probe');
});
