import type { ChatWrapper } from 'node-llama-cpp';
import { genericJsonFormat } from './generic-json-format.js';
import type { ToolCallFormat } from './tool-call-format.js';

/**
 * The tool-call format of a model family. Families whose template defines its own call syntax (Hermes'
 * `<tool_call>`, Llama 3.1's JSON, Mistral's `[TOOL_CALLS]`) get their own strategy file here; every other model,
 * including the bundled ones (no template: the Llama 2 fallback), uses the generic JSON format.
 */
export function selectToolCallFormat(_wrapper: ChatWrapper): ToolCallFormat {
  return genericJsonFormat;
}
