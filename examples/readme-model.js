import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { createEngine, loadDecoder } from 'qkv';

// A folder as the Hugging Face Hub serves it (config.json, model.safetensors, tokenizer.json);
// examples/model is the tour's toy, a character-level Llama that learned one page about attention.
const folder = 'examples/model';
const json = (file) => JSON.parse(readFileSync(`${folder}/${file}`, 'utf8'));
const tokenizer = new Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));

const engine = await createEngine();
const decoder = await loadDecoder(folder, { engine });
const prompt = 'Attention ';
const tokens = [];
for await (const token of decoder.generate(tokenizer.encode(prompt).ids, { maxNewTokens: 40 })) tokens.push(token);
console.log(decoder.config.architecture, `${decoder.config.numLayers} layers:`, prompt + tokenizer.decode(tokens));
decoder.dispose();
engine.dispose();
