/**
 * CLI: generate the bench58m random-weight GGUF used by the benchmark.
 *
 *   node dist/bench/make-bench-model.js [--out PATH] [--tokenizer PATH] [--seed N]
 *
 * Paths are relative to the current directory (run from the repository root).
 * Does nothing if the output file already exists (it acts as a cache).
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { makeBenchModel } from "./gguf/make-bench-model.js";

const DEFAULT_OUT = "bench/.cache/bench58m.gguf";
const DEFAULT_TOKENIZER = "models/llama-2-tiny-random.gguf";

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            out: { type: "string", default: DEFAULT_OUT },
            tokenizer: { type: "string", default: DEFAULT_TOKENIZER },
            seed: { type: "string" }
        },
        strict: true
    });
    const outPath = resolve(values.out ?? DEFAULT_OUT);
    if (existsSync(outPath)) {
        console.log(`bench model already exists: ${outPath}`);
        return;
    }
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    if (seed !== undefined && !Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
    mkdirSync(dirname(outPath), { recursive: true });
    const started = Date.now();
    await makeBenchModel({ outPath, tokenizerFrom: resolve(values.tokenizer ?? DEFAULT_TOKENIZER), seed });
    console.log(`wrote ${outPath} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
});
