import { LlamaEngine } from './dist/src/engine/llama/llama-engine.js';
import { modelSchema } from './dist/src/config/schema.js';
const modelPath = process.argv[2], bt = Number(process.argv[3]), N = 8, TOK = 64;
const cfg = modelSchema.parse({id:'m', path: modelPath, sequences: N, threads: 1, batch_threads: bt, context_size: 2048});
const engine = new LlamaEngine({models:[cfg]});
await engine.start();
const base = {model:'m', sampling:{temperature:0.7, topP:1, topK:0, minP:0, presencePenalty:0, frequencyPenalty:0, repetitionPenalty:1, logitBias:new Map(), seed:null}, maxTokens:TOK, minTokens:0, ignoreEos:true, stop:[], logprobs:null, echo:false, priority:0, deadline:Date.now()+1e9};
async function one(i){ let n=0; for await (const e of engine.generate({...base, prompt:{kind:'text', text:`${Math.random()} Once upon a time ${i} `.repeat(8)}}, new AbortController().signal)) { if(e.type==='end') n=e.usage.completionTokens;} return n;}
for (let rep=0; rep<2; rep++) for (const c of [1, N]) {
  const s=performance.now(); const r=await Promise.all([...Array(c)].map((_,i)=>one(i))); const ms=performance.now()-s;
  console.log(`bt=${bt} c=${c} tok/s=${(r.reduce((a,b)=>a+b)/ms*1000).toFixed(0)}`);
}
process.exit(0);
