// Text in and out of a checkpoint's tokens for the server: its tokenizer.json through
// @huggingface/tokenizers and its chat template (chat_template.jinja, or tokenizer_config.json's
// chat_template) through @huggingface/jinja, as examples/chat.js uses them. Both packages are loaded
// only when the checkpoint has a tokenizer.json, so a server of token ids needs neither.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A chat message as OpenAI's chat API takes it (content as text or text parts). */
export interface ChatMessage {
  role: string;
  content: string;
}

/** What the server needs of a tokenizer. */
export interface TextCodec {
  /** Token ids of a completion prompt (with the special tokens the tokenizer adds, e.g. BOS). */
  encode(text: string): number[];
  /** Text of generated ids, special tokens skipped. */
  decode(ids: readonly number[]): string;
  /** Token ids of a conversation ready for the assistant's reply; null without a chat template. */
  chat: ((messages: ChatMessage[]) => number[]) | null;
  /** Ids of the tokenizer's EOS token (ends generation as the model's eos ids do). */
  readonly stopIds: number[];
}

interface HFTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  token_to_id(token: string): number | undefined;
}

const tokenText = (t: unknown): string | undefined => (typeof t === 'string' ? t : typeof (t as { content?: unknown })?.content === 'string' ? (t as { content: string }).content : undefined);

/** The checkpoint folder's tokenizer and chat template, or null when it has no tokenizer.json. */
export async function loadText(folder: string): Promise<TextCodec | null> {
  if (!existsSync(join(folder, 'tokenizer.json'))) return null;
  const readJson = (file: string) => JSON.parse(readFileSync(join(folder, file), 'utf8'));
  const config = existsSync(join(folder, 'tokenizer_config.json')) ? readJson('tokenizer_config.json') : {};
  const { Tokenizer } = (await import('@huggingface/tokenizers')) as unknown as { Tokenizer: new (json: unknown, config: unknown) => HFTokenizer };
  const tokenizer = new Tokenizer(readJson('tokenizer.json'), config);
  const templateText = existsSync(join(folder, 'chat_template.jinja')) ? readFileSync(join(folder, 'chat_template.jinja'), 'utf8') : config.chat_template;
  let chat: TextCodec['chat'] = null;
  if (typeof templateText === 'string') {
    const { Template } = (await import('@huggingface/jinja')) as unknown as { Template: new (text: string) => { render(context: Record<string, unknown>): string } };
    const template = new Template(templateText);
    const bos = tokenText(config.bos_token) ?? '', eos = tokenText(config.eos_token) ?? '';
    // the template writes the special tokens itself
    chat = (messages) => tokenizer.encode(template.render({ messages, add_generation_prompt: true, bos_token: bos, eos_token: eos }), { add_special_tokens: false }).ids;
  }
  const stopIds: number[] = [];
  const eos = tokenText(config.eos_token);
  const eosId = eos === undefined ? undefined : tokenizer.token_to_id(eos);
  if (eosId !== undefined) stopIds.push(eosId);
  return {
    encode: (text) => tokenizer.encode(text).ids,
    decode: (ids) => tokenizer.decode([...ids], { skip_special_tokens: true }),
    chat,
    stopIds,
  };
}
