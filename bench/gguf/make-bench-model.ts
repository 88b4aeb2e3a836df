/**
 * Generates "bench58m": a llama-architecture GGUF with random Q8_0 weights (~58M parameters),
 * sized so that CPU decoding is compute-bound (a few ms per token on one thread).
 * The vocabulary/tokenizer is copied from an existing GGUF (all `tokenizer.ggml.*` keys, exact types).
 * Output is deterministic for a given seed and tokenizer file.
 */
import { gguf, GgmlType, GgufValueType, Q8_0_BLOCK_BYTES, Q8_0_BLOCK_VALUES, float32ToFloat16Bits, writeGguf, type GgufKv, type GgufTensorSpec } from "./gguf-writer.js";
import { readGgufMetadata } from "./gguf-reader.js";

/** Hyper-parameters of bench58m (lengths in elements). */
export const BENCH58M = {
    name: "bench58m",
    blockCount: 8,
    embeddingLength: 512,
    feedForwardLength: 1536,
    headCount: 8,
    headCountKv: 4,
    contextLength: 2048,
    ropeFreqBase: 10000,
    rmsNormEps: 1e-5
} as const;

/** llama.cpp LLAMA_FTYPE_MOSTLY_Q8_0. */
const FILE_TYPE_MOSTLY_Q8_0 = 7;
const ALIGNMENT = 32;
/** Weight values are ~uniform in [-WEIGHT_AMPLITUDE, WEIGHT_AMPLITUDE] (std ≈ 0.02). */
const WEIGHT_AMPLITUDE = 0.035;
/** Norm weights are ~uniform in [1 - NORM_JITTER, 1 + NORM_JITTER]. */
const NORM_JITTER = 0.05;
/** Q8_0 blocks generated per yielded chunk (8192 blocks = 272 KiB). */
const BLOCKS_PER_CHUNK = 8192;

export interface MakeBenchModelOptions {
    /** Path of the GGUF file to write (overwritten if present). */
    outPath: string;
    /** GGUF file whose `tokenizer.ggml.*` metadata is copied (e.g. a llama-2 32k vocab model). */
    tokenizerFrom: string;
    /** PRNG seed (uint32). Default 58. */
    seed?: number;
}

/** mulberry32: small deterministic PRNG; returns uniformly distributed uint32 values. */
export function mulberry32(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return (t ^ (t >>> 14)) >>> 0;
    };
}

/** Uniform float in [0, 1) from a uint32 generator. */
function unitFloat(next: () => number): number {
    return next() / 4294967296;
}

/**
 * Random Q8_0 data for `nElements` values: per block a scale d ≈ amplitude/127 (±25 %)
 * and 32 quants uniform in [-127, 127]. Yields chunks of at most BLOCKS_PER_CHUNK blocks.
 */
function* randomQ8_0(nElements: number, next: () => number, amplitude: number): Generator<Uint8Array> {
    let blocksLeft = nElements / Q8_0_BLOCK_VALUES;
    while (blocksLeft > 0) {
        const n = Math.min(blocksLeft, BLOCKS_PER_CHUNK);
        const buf = Buffer.allocUnsafe(n * Q8_0_BLOCK_BYTES);
        const quants = new Int8Array(buf.buffer, buf.byteOffset, buf.length);
        for (let b = 0; b < n; b++) {
            const o = b * Q8_0_BLOCK_BYTES;
            const d = (amplitude / 127) * (0.75 + 0.5 * unitFloat(next));
            buf.writeUInt16LE(float32ToFloat16Bits(d), o);
            for (let j = 0; j < Q8_0_BLOCK_VALUES; j += 4) {
                const r = next();
                for (let k = 0; k < 4; k++) {
                    const q = ((r >>> (8 * k)) << 24) >> 24; // signed byte
                    quants[o + 2 + j + k] = q === -128 ? -127 : q;
                }
            }
        }
        blocksLeft -= n;
        yield buf;
    }
}

/** F32 norm weights close to 1. */
function* normWeights(n: number, next: () => number): Generator<Uint8Array> {
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = 1 + NORM_JITTER * (2 * unitFloat(next) - 1);
    yield new Uint8Array(values.buffer);
}

/** Picks the tokenizer keys to copy; returns them and the vocabulary size. */
function tokenizerKv(tokenizerFrom: string): { kv: GgufKv[]; vocabSize: number } {
    const kv = readGgufMetadata(tokenizerFrom).kv.filter((e) => e.key.startsWith("tokenizer.ggml."));
    const tokens = kv.find((e) => e.key === "tokenizer.ggml.tokens")?.value;
    if (tokens === undefined || tokens.type !== GgufValueType.ARRAY) {
        throw new Error(`${tokenizerFrom}: no tokenizer.ggml.tokens array`);
    }
    return { kv, vocabSize: tokens.value.length };
}

/** Model metadata (general.* and llama.*) followed by the copied tokenizer keys. */
function modelKv(vocabSize: number, tokenizer: GgufKv[]): GgufKv[] {
    const h = BENCH58M;
    const u32 = gguf.u32;
    return [
        { key: "general.architecture", value: gguf.str("llama") },
        { key: "general.name", value: gguf.str(h.name) },
        { key: "general.file_type", value: u32(FILE_TYPE_MOSTLY_Q8_0) },
        { key: "general.alignment", value: u32(ALIGNMENT) },
        { key: "llama.context_length", value: u32(h.contextLength) },
        { key: "llama.embedding_length", value: u32(h.embeddingLength) },
        { key: "llama.block_count", value: u32(h.blockCount) },
        { key: "llama.feed_forward_length", value: u32(h.feedForwardLength) },
        { key: "llama.attention.head_count", value: u32(h.headCount) },
        { key: "llama.attention.head_count_kv", value: u32(h.headCountKv) },
        { key: "llama.rope.dimension_count", value: u32(h.embeddingLength / h.headCount) },
        { key: "llama.attention.layer_norm_rms_epsilon", value: gguf.f32(h.rmsNormEps) },
        { key: "llama.rope.freq_base", value: gguf.f32(h.ropeFreqBase) },
        { key: "llama.vocab_size", value: u32(vocabSize) },
        ...tokenizer
    ];
}

/**
 * Tensor list in llama.cpp LLM_ARCH_LLAMA naming; dims in ggml order (ne0 = input features).
 * All tensors share one PRNG, consumed in file order, so output depends only on the seed.
 */
function modelTensors(vocabSize: number, seed: number): GgufTensorSpec[] {
    const h = BENCH58M;
    const next = mulberry32(seed);
    const nEmbd = h.embeddingLength;
    const nEmbdKv = (nEmbd / h.headCount) * h.headCountKv;
    const nFf = h.feedForwardLength;
    const matrix = (name: string, ne0: number, ne1: number): GgufTensorSpec =>
        ({ name, dims: [ne0, ne1], type: GgmlType.Q8_0, data: () => randomQ8_0(ne0 * ne1, next, WEIGHT_AMPLITUDE) });
    const norm = (name: string): GgufTensorSpec =>
        ({ name, dims: [nEmbd], type: GgmlType.F32, data: () => normWeights(nEmbd, next) });

    const tensors: GgufTensorSpec[] = [matrix("token_embd.weight", nEmbd, vocabSize)];
    for (let i = 0; i < h.blockCount; i++) {
        const p = `blk.${i}.`;
        tensors.push(
            norm(`${p}attn_norm.weight`),
            matrix(`${p}attn_q.weight`, nEmbd, nEmbd),
            matrix(`${p}attn_k.weight`, nEmbd, nEmbdKv),
            matrix(`${p}attn_v.weight`, nEmbd, nEmbdKv),
            matrix(`${p}attn_output.weight`, nEmbd, nEmbd),
            norm(`${p}ffn_norm.weight`),
            matrix(`${p}ffn_gate.weight`, nEmbd, nFf),
            matrix(`${p}ffn_up.weight`, nEmbd, nFf),
            matrix(`${p}ffn_down.weight`, nFf, nEmbd)
        );
    }
    tensors.push(norm("output_norm.weight"), matrix("output.weight", nEmbd, vocabSize));
    return tensors;
}

/** Writes the bench58m model to `outPath` (~62 MB). Deterministic for a given seed and tokenizer. */
export async function makeBenchModel(options: MakeBenchModelOptions): Promise<void> {
    const seed = options.seed ?? 58;
    const { kv: tokenizer, vocabSize } = tokenizerKv(options.tokenizerFrom);
    await writeGguf(options.outPath, {
        kv: modelKv(vocabSize, tokenizer),
        tensors: modelTensors(vocabSize, seed),
        alignment: ALIGNMENT
    });
}
