import type { ChatMessage } from '../../engine/engine.js';
import type { ChatCompletionRequest, ChatMessageWire } from '../../protocol/openai/chat-completions.js';
import { invalidRequest } from '../errors.js';
import type { InferenceRequest, TranslateContext } from '../inference/inference-request.js';
import { resolveOutputConstraint } from './output-constraint.js';
import { resolveGeneration } from './resolve-generation.js';
import { resolveTools } from './tools.js';

export function translateChatRequest(wire: ChatCompletionRequest, context: TranslateContext): InferenceRequest {
  if (wire.top_logprobs !== null && wire.top_logprobs !== undefined && !wire.logprobs) {
    throw invalidRequest('top_logprobs requires logprobs to be true.', 'top_logprobs');
  }
  const textConstraint = resolveOutputConstraint(wire);
  const { tools, constraint: toolConstraint } = resolveTools(wire, textConstraint);
  const messages = wire.messages.map(translateMessage);
  return {
    model: wire.model,
    prompts: [tools.length > 0 ? { kind: 'chat', messages, tools } : { kind: 'chat', messages }],
    n: wire.n ?? 1,
    ...resolveGeneration(wire, context, {
      maxTokens: wire.max_completion_tokens ?? wire.max_tokens ?? null,
      logprobs: wire.logprobs ? (wire.top_logprobs ?? 0) : null,
      echo: false,
      constraint: toolConstraint ?? textConstraint,
    }),
  };
}

function translateMessage(message: ChatMessageWire, index: number): ChatMessage {
  const content = messageText(message, index);
  switch (message.role) {
    case 'system':
    case 'developer':
      return { role: 'system', content };
    case 'user':
      return { role: 'user', content };
    case 'assistant':
      return {
        role: 'assistant',
        content,
        toolCalls: message.tool_calls?.map((call) => ({
          id: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
        })),
      };
    case 'tool':
      if (!message.tool_call_id) throw invalidRequest('A tool message needs tool_call_id.', `messages[${index}].tool_call_id`);
      return { role: 'tool', content, toolCallId: message.tool_call_id };
  }
}

function messageText(message: ChatMessageWire, index: number): string {
  const content = message.content;
  if (content === null || content === undefined) {
    if (message.role === 'assistant' && message.tool_calls && message.tool_calls.length > 0) return '';
    throw invalidRequest(`messages[${index}].content is required for role '${message.role}'.`, `messages[${index}].content`);
  }
  if (typeof content === 'string') return content;
  return content
    .map((part, partIndex) => {
      if (part.type !== 'text') {
        throw invalidRequest(
          `Content parts of type '${part.type}' are not supported by this model; only 'text' is.`,
          `messages[${index}].content[${partIndex}].type`,
        );
      }
      if (typeof part.text !== 'string') {
        throw invalidRequest('A text content part needs a string text.', `messages[${index}].content[${partIndex}].text`);
      }
      return part.text;
    })
    .join('');
}
