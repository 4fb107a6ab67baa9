// Chat with a local Hugging Face checkpoint: `node examples/chat.js <checkpoint-folder> [--weights float16]
// [--threads 2] [--temperature 0.7] [--max-new-tokens 256] [--system "You are …"] [--prompt "one question"]`
//
// The folder is what the Hub serves for a model (config.json, model.safetensors or its shards and
// index, tokenizer.json, tokenizer_config.json); for example SmolLM2-135M-Instruct or
// Qwen2.5-0.5B-Instruct (README, "Run a model"). Text goes through the checkpoint's own tokenizer and
// chat template, with Hugging Face's JavaScript packages (@huggingface/tokenizers, @huggingface/jinja).
// The conversation is one DecoderSequence: each turn feeds only the tokens the sequence does not hold
// yet, so earlier turns are never computed twice. Tokens are printed as they come, tokens/s at the end.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { createEngine, loadDecoder } from 'qkv';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const folder = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (!folder) {
  console.error('usage: node examples/chat.js <checkpoint-folder> [--weights float32|float16] [--threads N|auto] [--temperature T] [--max-new-tokens N] [--system TEXT] [--prompt TEXT]');
  process.exit(2);
}
const readJson = (file) => JSON.parse(readFileSync(join(folder, file), 'utf8'));
const tokenizerConfig = existsSync(join(folder, 'tokenizer_config.json')) ? readJson('tokenizer_config.json') : {};
const tokenizer = new Tokenizer(readJson('tokenizer.json'), tokenizerConfig);
const templateText = existsSync(join(folder, 'chat_template.jinja')) ? readFileSync(join(folder, 'chat_template.jinja'), 'utf8') : tokenizerConfig.chat_template;
const template = typeof templateText === 'string' ? new Template(templateText) : null;
const tokenText = (t) => (typeof t === 'string' ? t : t?.content);

const threads = option('threads', '1');
const engine = await createEngine({ threads: threads === 'auto' ? 'auto' : Number(threads) });
const t0 = performance.now();
const decoder = await loadDecoder(folder, {
  engine, weights: option('weights'), maxTokens: 4096,
  onProgress: ({ loadedBytes, totalBytes }) => process.stderr.isTTY && process.stderr.write(`\rloading ${((100 * loadedBytes) / totalBytes).toFixed(0)}% of ${(totalBytes / 1e6).toFixed(1)} MB`),
});
const c = decoder.config;
console.error(`\r${c.architecture}: ${c.numLayers} layers, hidden ${c.hiddenSize}, ${(decoder.bytes / 1e6).toFixed(1)} MB in the engine, loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s (${engine.info.simd}, ${engine.info.threads} thread${engine.info.threads > 1 ? 's' : ''})`);

const messages = option('system') ? [{ role: 'system', content: option('system') }] : [];
/** The conversation as text, ready for the assistant's next reply. */
function render() {
  if (!template) return messages.map((m) => m.content).join('\n');
  return template.render({
    messages, add_generation_prompt: true,
    bos_token: tokenText(tokenizerConfig.bos_token) ?? '', eos_token: tokenText(tokenizerConfig.eos_token) ?? '',
  });
}
// the template writes the special tokens itself; a checkpoint without one gets its BOS token
const encode = (text) => tokenizer.encode(text, { add_special_tokens: !template }).ids;

const sequence = decoder.sequence();
const stop = [...c.eosTokenIds];
const eos = tokenText(tokenizerConfig.eos_token);
if (eos && tokenizer.token_to_id(eos) !== undefined) stop.push(tokenizer.token_to_id(eos));

/** One reply: feed what the sequence lacks of the conversation, then print tokens as they come. */
async function reply() {
  const tokens = encode(render());
  // keep what the sequence already holds of this conversation; feed the rest
  const held = sequence.tokens;
  let same = 0;
  while (same < held.length && same < tokens.length - 1 && held[same] === tokens[same]) same++;
  sequence.truncate(same);
  const ids = [];
  let printed = '';
  const start = performance.now();
  for await (const id of decoder.generate(tokens.slice(same), {
    sequence, stop, maxNewTokens: Number(option('max-new-tokens', 256)),
    temperature: Number(option('temperature', 0)), topP: 0.95, repetitionPenalty: 1.1, seed: 1,
  })) {
    ids.push(id);
    const text = tokenizer.decode(ids, { skip_special_tokens: true });
    process.stdout.write(text.slice(printed.length));
    printed = text;
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(`\n[${ids.length} tokens in ${seconds.toFixed(2)} s: ${(ids.length / seconds).toFixed(1)} tokens/s, prompt ${tokens.length - same} new tokens of ${tokens.length}]`);
  messages.push({ role: 'assistant', content: printed });
}

if (option('prompt')) {
  messages.push({ role: 'user', content: option('prompt') });
  await reply();
} else {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  for (;;) {
    const line = await rl.question('> ').catch(() => null);
    if (line === null || line.trim() === '/exit') break;
    if (!line.trim()) continue;
    messages.push({ role: 'user', content: line });
    await reply();
  }
  rl.close();
}
sequence.free();
decoder.dispose();
engine.dispose();
