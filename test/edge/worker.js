// A Worker that imports qkv as an app would, through the export conditions its runtime's bundler
// resolves ("workerd" for Wrangler, "edge-light" for Vercel): test/edge/run.js bundles it with
// esbuild under those conditions and serves it from local workerd and from Vercel's edge-runtime.
// It creates its engine with no wasm passed: the entry imports build/qkv.wasm as a module itself.
//   GET /attention          attention ops on the wasm engine (test/edge/cases.js)
//   GET /decoder?prompt=…   the qwen3 fixture's last logits and 8 greedy tokens
//   GET /limits             engine.info and the RangeErrors of the memory limits
import * as qkv from 'qkv';
// the fixture's files, as modules: workerd's text and data modules, or inlined by the bundler (run.js)
import configText from 'fixture:config.json';
import modelBytes from 'fixture:model.safetensors';
import { attention, decoder, limits } from './cases.js';

let engine = null;

export async function handle(request) {
  const url = new URL(request.url);
  try {
    engine ??= await qkv.createEngine();
    let body;
    if (url.pathname === '/attention') {
      body = { info: engine.info, ...attention(qkv, engine) };
    } else if (url.pathname === '/decoder') {
      const prompt = url.searchParams.get('prompt').split(',').map(Number);
      const files = { 'config.json': new TextEncoder().encode(configText), 'model.safetensors': new Uint8Array(modelBytes) };
      body = await decoder(qkv, engine, files, prompt);
    } else if (url.pathname === '/limits') {
      body = await limits(qkv);
    } else {
      return new Response('not found', { status: 404 });
    }
    return new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
  } catch (error) {
    return new Response(`${error?.stack ?? error}`, { status: 500 });
  }
}

export default { fetch: handle };
