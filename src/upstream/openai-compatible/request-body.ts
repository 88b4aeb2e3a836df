import type { ChatMessage, GenerateRequest, OutputConstraint, ToolDefinition } from '../../engine/engine.js';

/** A JSON request body for the upstream. */
export type WireBody = Record<string, unknown>;

/**
 * The body of `/chat/completions` for a chat prompt. OpenAI's own fields are always sent; vLLM's extras (top_k,
 * min_p, repetition_penalty, min_tokens, ignore_eos, guided_*) only when they differ from their neutral value, since
 * OpenAI itself refuses fields it does not know.
 */
export function toChatBody(request: GenerateRequest, model: string): WireBody {
  if (request.prompt.kind !== 'chat') throw new Error('toChatBody needs a chat prompt');
  const body: WireBody = {
    model,
    messages: request.prompt.messages.map(toWireMessage),
    ...commonFields(request),
  };
  if (request.logprobs !== null) {
    body.logprobs = true;
    if (request.logprobs > 0) body.top_logprobs = request.logprobs;
  }
  const constraint = request.constraint;
  if (constraint?.kind === 'tool-calls') {
    body.tools = (request.prompt.tools ?? []).map(toWireTool);
    body.tool_choice = typeof constraint.choice === 'object' ? { type: 'function', function: { name: constraint.choice.name } } : constraint.choice;
    if (!constraint.parallel) body.parallel_tool_calls = false;
    if (constraint.text) Object.assign(body, constraintFields(constraint.text));
  } else if (constraint) {
    Object.assign(body, constraintFields(constraint));
  }
  return body;
}

/** The body of `/completions` for a text or token prompt. */
export function toCompletionBody(request: GenerateRequest, model: string): WireBody {
  const prompt = request.prompt;
  if (prompt.kind === 'chat') throw new Error('toCompletionBody needs a text or token prompt');
  const body: WireBody = { model, prompt: prompt.kind === 'text' ? prompt.text : prompt.tokens, ...commonFields(request) };
  if (request.logprobs !== null) body.logprobs = request.logprobs;
  if (request.echo) body.echo = true;
  if (request.constraint && request.constraint.kind !== 'tool-calls') Object.assign(body, constraintFields(request.constraint));
  return body;
}

function commonFields(request: GenerateRequest): WireBody {
  const sampling = request.sampling;
  const body: WireBody = {
    stream: true,
    stream_options: { include_usage: true },
    temperature: sampling.temperature,
    top_p: sampling.topP,
  };
  if (request.maxTokens !== null) body.max_tokens = request.maxTokens;
  if (request.stop.length > 0) body.stop = request.stop;
  if (sampling.presencePenalty !== 0) body.presence_penalty = sampling.presencePenalty;
  if (sampling.frequencyPenalty !== 0) body.frequency_penalty = sampling.frequencyPenalty;
  if (sampling.seed !== null) body.seed = sampling.seed;
  if (sampling.logitBias.size > 0) body.logit_bias = Object.fromEntries(sampling.logitBias);
  // vLLM's sampling extras.
  if (sampling.topK > 0) body.top_k = sampling.topK;
  if (sampling.minP > 0) body.min_p = sampling.minP;
  if (sampling.repetitionPenalty !== 1) body.repetition_penalty = sampling.repetitionPenalty;
  if (request.minTokens > 0) body.min_tokens = request.minTokens;
  if (request.ignoreEos) body.ignore_eos = true;
  if (request.cacheSalt !== null) body.cache_salt = request.cacheSalt;
  return body;
}

/**
 * Output constraints as OpenAI (response_format) and vLLM (guided decoding) take them. A GBNF grammar is sent as
 * vLLM's `guided_grammar` and as llama-server's (and Tokenmill's) `grammar`: each server ignores the other's name.
 */
function constraintFields(constraint: Exclude<OutputConstraint, { kind: 'tool-calls' }>): WireBody {
  switch (constraint.kind) {
    case 'json-object':
      return { response_format: { type: 'json_object' } };
    case 'json-schema':
      return { response_format: { type: 'json_schema', json_schema: { name: 'response', schema: constraint.schema } } };
    case 'regex':
      return { guided_regex: constraint.pattern };
    case 'choice':
      return { guided_choice: constraint.choices };
    case 'gbnf':
      return { guided_grammar: constraint.grammar, grammar: constraint.grammar };
  }
}

function toWireMessage(message: ChatMessage): WireBody {
  switch (message.role) {
    case 'tool':
      return { role: 'tool', content: message.content, tool_call_id: message.toolCallId };
    case 'assistant':
      if (message.toolCalls && message.toolCalls.length > 0) {
        return {
          role: 'assistant',
          content: message.content === '' ? null : message.content,
          tool_calls: message.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
        };
      }
      return { role: 'assistant', content: message.content };
    default:
      return { role: message.role, content: message.content };
  }
}

function toWireTool(tool: ToolDefinition): WireBody {
  const definition: WireBody = { name: tool.name };
  if (tool.description !== null) definition.description = tool.description;
  definition.parameters = tool.parameters ?? { type: 'object', properties: {} };
  return { type: 'function', function: definition };
}
