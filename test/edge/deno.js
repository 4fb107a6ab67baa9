// qkv on Deno with no permission but reading the package (and the test's fixture): what Deno Deploy
// grants a deployment's own files. Deno resolves qkv's "default" export (the "deno" and "node"
// conditions: wasm read from build/ beside the JS), runs one thread (Deno Deploy has no Worker), and
// must answer as the reference engine. Run by .ci/runtimes:
//
//   deno run --allow-read=. test/edge/deno.js
import * as qkv from 'qkv';
import { attention, decoder, differences } from './cases.js';

const fixture = new URL('../fixtures/decoders/qwen3/', import.meta.url);
const read = (name) => Deno.readFile(new URL(name, fixture));
const expected = JSON.parse(new TextDecoder().decode(await read('expected.json')));
const files = { 'config.json': await read('config.json'), 'model.safetensors': await read('model.safetensors') };

const engine = await qkv.createEngine();
const label = `Deno ${Deno.version.deno}`;
const failures = [
  ...differences(attention(qkv, engine), attention(qkv, qkv.reference), `${label} attention`),
  ...differences(await decoder(qkv, engine, files, expected.prompt), await decoder(qkv, qkv.reference, files, expected.prompt), `${label} decoder`),
];
const { tokens } = await decoder(qkv, engine, files, expected.prompt);
if (tokens.join() !== expected.greedy.join()) failures.push(`${label}: greedy tokens ${tokens} are not transformers' ${expected.greedy}`);
console.log(`${label}, --allow-read only: engine ${JSON.stringify(engine.info)}; attention, the qwen3 decoder's logits and tokens [${tokens}]`);
engine.dispose();
for (const failure of failures) console.log(`FAIL ${failure}`);
console.log(failures.length ? `${failures.length} failed` : 'as the reference engine');
if (failures.length) Deno.exit(1);
