import { choiceSeed } from '../translate/sampling.js';
import type { Engine, EngineEvent, Usage } from '../../engine/engine.js';
import type { InferenceRequest } from './inference-request.js';

/** An engine event of one choice. */
export type ChoiceEvent = EngineEvent & { index: number };

/**
 * Runs every choice of a request (each prompt times n) on the engine at once and yields their events as they come,
 * tagged with the choice index. If one choice fails, the others are aborted; every `end` event (with the usage of
 * what was computed) is still yielded, then the error is thrown.
 */
export async function* runChoices(engine: Engine, request: InferenceRequest, signal: AbortSignal): AsyncGenerator<ChoiceEvent> {
  const total = request.prompts.length * request.n;
  if (total === 1) {
    let failure: unknown = null;
    for await (const event of engine.generate({ ...request.generation, prompt: request.prompts[0] }, signal)) {
      if (event.type === 'end' && event.error !== undefined) failure = event.error;
      yield { ...event, index: 0 };
    }
    if (failure !== null) throw failure;
    return;
  }
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal.addEventListener('abort', abort, { once: true });
  const queue: ChoiceEvent[] = [];
  let wake: (() => void) | null = null;
  let running = total;
  let failure: { error: unknown } | null = null;
  const notify = () => {
    const resume = wake;
    wake = null;
    resume?.();
  };
  for (let index = 0; index < total; index++) {
    const prompt = request.prompts[Math.floor(index / request.n)];
    const seed = choiceSeed(request.generation.sampling.seed, index % request.n);
    const generation = { ...request.generation, sampling: { ...request.generation.sampling, seed }, prompt };
    void (async () => {
      try {
        for await (const event of engine.generate(generation, controller.signal)) {
          if (event.type === 'end' && event.error !== undefined && !failure) {
            failure = { error: event.error };
            controller.abort();
          }
          queue.push({ ...event, index });
          notify();
        }
      } catch (error) {
        failure ??= { error };
        controller.abort();
      } finally {
        running--;
        notify();
      }
    })();
  }
  try {
    while (true) {
      if (queue.length > 0) {
        yield queue.shift()!;
        continue;
      }
      if (running === 0) {
        if (failure) throw (failure as { error: unknown }).error;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal.removeEventListener('abort', abort);
    controller.abort();
  }
}

/**
 * Sums the usage of a request's choices: the prompt counts once per prompt (as OpenAI reports n > 1), the
 * completion tokens of every choice add up.
 */
export class UsageTotals {
  promptTokens = 0;
  cachedTokens = 0;
  completionTokens = 0;
  cacheWriteTokens = 0;

  constructor(private readonly n: number) {}

  add(index: number, usage: Usage): void {
    if (index % this.n === 0) {
      this.promptTokens += usage.promptTokens;
      this.cachedTokens += usage.cachedTokens;
      this.cacheWriteTokens += usage.cacheWriteTokens ?? 0;
    }
    this.completionTokens += usage.completionTokens;
  }

}
