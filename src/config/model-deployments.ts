import type { DeploymentConfig, LocalModelConfig, ModelConfig } from './schema.js';

/**
 * A model's deployments: its `deployments` list, or, for a model given by `path` (the original catalog form), one
 * local llama deployment with the model's own settings.
 */
export function modelDeployments(model: ModelConfig): DeploymentConfig[] {
  if (model.deployments) return [...model.deployments];
  return [
    {
      kind: 'llama',
      path: model.path!,
      context_size: model.context_size,
      sequences: model.sequences,
      threads: model.threads,
      batch_threads: model.batch_threads,
      batch_threads_min_tokens: model.batch_threads_min_tokens,
      flash_attention: model.flash_attention,
      batch_size: model.batch_size,
      max_queue: model.max_queue,
      chat_template: model.chat_template,
      embeddings: model.embeddings,
      weight: 1,
    },
  ];
}

/** The models llama.cpp loads in this process: each catalog model with a local deployment, with that deployment's settings. */
export function localModelConfigs(models: readonly ModelConfig[]): LocalModelConfig[] {
  const local: LocalModelConfig[] = [];
  for (const model of models) {
    const deployment = modelDeployments(model).find((candidate) => candidate.kind === 'llama');
    if (!deployment) continue;
    const { kind: _kind, weight: _weight, ...settings } = deployment;
    local.push({ ...model, ...settings });
  }
  return local;
}
