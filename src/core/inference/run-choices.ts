import { choiceSeed } from '../translate/sampling.js';
import type { Engine, EngineEvent, Usage } from '../../engine/engine.js';
import type { InferenceRequest } from './inference-request.js';

/** An engine event of one choice. */
export type ChoiceEvent = EngineEvent & { index: number };

/**
 * Runs every choice of a request (each prompt times n) on the engine at once and yields their events as they come,
 * in batches (as the engine's: never empty), each event tagged with its choice index. If one choice fails, the
 * others are aborted; every `end` event (with the usage of what was computed) is still yielded, then the error is
 * thrown.
 */
export async function* runChoices(engine: Engine, request: InferenceRequest, signal: AbortSignal): AsyncGenerator<ChoiceEvent[]> {
  const total = request.prompts.length * request.n;
  if (total === 1) {
    let failure: unknown = null;
    for await (const batch of engine.generate({ ...request.generation, prompt: request.prompts[0] }, signal)) {
      for (const event of batch) {
        if (event.type === 'end' && event.error !== undefined) failure = event.error;
        tag(event, 0);
      }
      yield batch as ChoiceEvent[];
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
        for await (const batch of engine.generate(generation, controller.signal)) {
          for (const event of batch) {
            if (event.type === 'end' && event.error !== undefined && !failure) {
              failure = { error: event.error };
              controller.abort();
            }
            queue.push(tag(event, index));
          }
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
        yield queue.splice(0);
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

/** Tags an engine event (the consumer's own object: Engine.generate) with its choice index, in place. */
function tag(event: EngineEvent, index: number): ChoiceEvent {
  const tagged = event as ChoiceEvent;
  tagged.index = index;
  return tagged;
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
