import { randomBytes, randomInt } from 'node:crypto';

/** Common words that both vocabularies (Llama-2's 32k and stories260K's 512) split into few tokens. */
const WORDS = (
  'the cat sat on a mat and the dog ran in the park with a red ball while the sun was warm ' +
  'one day a little girl named lily went to the big tree to find her friend tom who liked to play ' +
  'they saw a bird fly over the house and a fish jump in the pond so they laughed and sang a happy song ' +
  'then mom said it was time to eat some soup and bread before the rain came down on the small town'
).split(' ');

/** A random id that starts every unique prompt, so that no prompt cache can serve it (48 random bits, hex). */
export function randomId(): string {
  return randomBytes(6).toString('hex');
}

/**
 * A unique id, then `words` random words: the unique-prompt workload's text. The id comes first, so that a prompt
 * shares no tokens with any other beyond what a chat template puts before it.
 */
export function uniquePromptText(words: number): string {
  const parts = [`${randomId()}:`];
  for (let index = 0; index < words; index++) parts.push(WORDS[randomInt(WORDS.length)]);
  return parts.join(' ');
}
