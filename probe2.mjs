import {getLlama, LlamaLogLevel, resolveChatWrapper, JinjaTemplateChatWrapper} from 'node-llama-cpp';
const llama = await getLlama({gpu:false, logLevel: LlamaLogLevel.error, build:'never'});
const model = await llama.loadModel({modelPath: 'models/stories260K.gguf'});
const w = resolveChatWrapper(model);
console.log(w.constructor.name, w.wrapperName);
const st = w.generateContextState({chatHistory:[{type:'system',text:'Be nice.'},{type:'user',text:'Hi there'},{type:'model',response:['Hello!']},{type:'user',text:'Tell a story'},{type:'model',response:[]}]});
console.log(JSON.stringify(st.contextText.toString()));
console.log(st.stopGenerationTriggers.map(t=>JSON.stringify(t.toString())+ ' '+JSON.stringify(t.tokenize(model.tokenizer))));
console.log(st.contextText.tokenize(model.tokenizer).slice(0,10));
const jw = new JinjaTemplateChatWrapper({template: "{% for m in messages %}<|{{m.role}}|>{{m.content}}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"});
const st2 = jw.generateContextState({chatHistory:[{type:'system',text:'Be nice.'},{type:'user',text:'Hi there'},{type:'model',response:[]}]});
console.log(JSON.stringify(st2.contextText.toString()), st2.stopGenerationTriggers.map(String));
// probabilities under greedy
const ctx = await model.createContext({sequences:1, contextSize:256, threads:1});
const seq = ctx.getSequence();
let i=0;
for await (const o of seq.evaluateWithMetadata(model.tokenize('Once upon a time',true), {probabilities:true, confidence:true}, {temperature:0})) { console.log(o.token, o.confidence, [...o.probabilities.entries()].slice(0,3), o.probabilities.size); if(++i>2) break; }
i=0;
for await (const o of seq.evaluateWithMetadata([model.tokens.bos, ...model.tokenize('Once upon a time')], {probabilities:true, confidence:true}, {temperature:0.8, topK: 5})) { console.log(o.token, o.confidence, [...o.probabilities.entries()].slice(0,3), o.probabilities.size); if(++i>2) break; }
console.log(model.tokens.bos, model.tokens.eos, model.tokenize('Once upon', false), model.tokenize('<s>Once', true), model.fileInsights.trainContextSize);
process.exit(0)
