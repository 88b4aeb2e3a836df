import type { OpenAIDeploymentConfig } from '../config/schema.js';
import { OpenAICompatibleUpstream } from './openai-compatible/openai-compatible-upstream.js';
import type { Upstream } from './upstream.js';

/** The deployment kinds served over HTTP: one folder each under upstream/. */
export type UpstreamDeploymentConfig = OpenAIDeploymentConfig;

/** Builds the client of one upstream deployment (a new kind adds its folder and one case here). */
export function createUpstream(config: UpstreamDeploymentConfig, now: () => number = Date.now): Upstream {
  switch (config.kind) {
    case 'openai':
      return new OpenAICompatibleUpstream(config, now);
  }
}
