import type { EmbeddingList } from '../../protocol/openai/embeddings.js';

/** OpenAI's embedding list: one entry per vector, as floats or (`base64`) little-endian float32 bytes. */
export function encodeEmbeddings(vectors: number[][], model: string, promptTokens: number, format: 'float' | 'base64' | null | undefined): EmbeddingList {
  return {
    object: 'list',
    data: vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
    })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}
