import { modelNotFound } from '../core/errors.js';
import type { AppDependencies } from './app.js';

/** Fails with 404 `model_not_found` before any work when the catalog has no such model. */
export function requireModel(deps: AppDependencies, model: string): void {
  if (!deps.engine.hasModel(model)) throw modelNotFound(model);
}
