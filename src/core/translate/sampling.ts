import type { SamplingParams } from '../../engine/engine.js';
import { invalidRequest } from '../errors.js';

/** The sampling fields as the OpenAI wire formats name them (shared by chat and completions). */
export interface WireSampling {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  seed?: number | null;
  stop?: string | string[] | null;
}

/** OpenAI's defaults: temperature 1, top_p 1; top_k and min_p off; no penalties. */
export function resolveSampling(wire: WireSampling): SamplingParams {
  const logitBias = new Map<number, number>();
  for (const [key, value] of Object.entries(wire.logit_bias ?? {})) logitBias.set(Number(key), value);
  return {
    temperature: wire.temperature ?? 1,
    topP: wire.top_p ?? 1,
    topK: wire.top_k === null || wire.top_k === undefined || wire.top_k < 0 ? 0 : wire.top_k,
    minP: wire.min_p ?? 0,
    presencePenalty: wire.presence_penalty ?? 0,
    frequencyPenalty: wire.frequency_penalty ?? 0,
    repetitionPenalty: wire.repetition_penalty ?? 1,
    logitBias,
    seed: wire.seed === null || wire.seed === undefined ? null : Number(BigInt.asUintN(32, BigInt(Math.trunc(wire.seed)))),
  };
}

export function resolveStop(stop: string | string[] | null | undefined): string[] {
  const list = stop === null || stop === undefined ? [] : typeof stop === 'string' ? [stop] : stop;
  list.forEach((value, index) => {
    if (value.length === 0) {
      throw invalidRequest('Stop sequences must not be empty.', typeof stop === 'string' ? 'stop' : `stop[${index}]`);
    }
  });
  return list.filter((value) => value.length > 0);
}

/** The seed of choice `index`: consecutive seeds, so that choices differ yet repeat with the same request seed. */
export function choiceSeed(seed: number | null, index: number): number | null {
  return seed === null ? null : (seed + index) >>> 0;
}
