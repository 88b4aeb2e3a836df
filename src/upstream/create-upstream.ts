import type { AnthropicDeploymentConfig, OpenAIDeploymentConfig } from '../config/schema.js';
import { AnthropicUpstream } from './anthropic/anthropic-upstream.js';
import { OpenAICompatibleUpstream } from './openai-compatible/openai-compatible-upstream.js';
import type { Upstream } from './upstream.js';

/** The deployment kinds served over HTTP: one folder each under upstream/. */
export type UpstreamDeploymentConfig = OpenAIDeploymentConfig | AnthropicDeploymentConfig;

/** What an upstream client may need to know of its catalog model. */
export interface UpstreamModelContext {
  /** Tokens of context the catalog gives the model (an Anthropic upstream caps its default `max_tokens` with it). */
  contextSize: number;
}

/** Builds the client of one upstream deployment (a new kind adds its folder and one case here). */
export function createUpstream(
  config: UpstreamDeploymentConfig,
  now: () => number = Date.now,
  model: UpstreamModelContext = { contextSize: 8192 },
): Upstream {
  switch (config.kind) {
    case 'openai':
      return new OpenAICompatibleUpstream(config, now);
    case 'anthropic':
      return new AnthropicUpstream(config, model.contextSize, now);
  }
}
