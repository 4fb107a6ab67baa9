// Objects from another realm (a node:vm context here; in production Next.js's edge sandbox, which
// compiles an edge function's `.wasm?module` imports in the host and hands the modules in):
// createEngine({ wasm }) takes a WebAssembly.Module compiled there, which fails `instanceof` here;
// and a realm without Symbol.dispose (a fresh vm context on Node 20, older browsers) still gets
// [Symbol.dispose] under the symbol that esbuild's and Babel's down-levelled `using` fall back to.
// The Worker itself runs in workerd and Vercel's edge runtime in test/edge/run.js (.ci/runtimes).
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';
import { createEngine, reference, tensor } from '../src/index.ts';

const build = (name: string) => readFileSync(new URL(`../build/${name}`, import.meta.url));
/** A module compiled by another realm's WebAssembly. */
const foreignModule = (bytes: Uint8Array): Promise<WebAssembly.Module> => runInNewContext('WebAssembly.compile(bytes)', { bytes });

describe('another realm', () => {
  it('createEngine({ wasm }) takes a WebAssembly.Module compiled in another realm, on 1 and 2 threads', async () => {
    const plain = await foreignModule(build('qkv.wasm'));
    const threaded = await foreignModule(build('qkv-threads.wasm'));
    expect(plain instanceof WebAssembly.Module).toBe(false);
    expect(Object.prototype.toString.call(plain)).toBe('[object WebAssembly.Module]');
    const q = tensor(Float32Array.from({ length: 2 * 5 * 16 }, (_, i) => Math.sin(i)), [2, 5, 16]);
    const want = reference.scaledDotProductAttention(q, q, q, { causal: true }).output.data;
    for (const [wasm, threads] of [[plain, 1], [threaded, 2]] as const) {
      const engine = await createEngine({ wasm, threads, simd: 'simd' });
      expect(engine.info).toMatchObject({ simd: 'simd', threads });
      const got = engine.scaledDotProductAttention(q, q, q, { causal: true }).output.data;
      got.forEach((x, i) => expect(Math.abs(x - want[i])).toBeLessThanOrEqual(1e-4 + 1e-4 * Math.abs(want[i])));
      engine.dispose();
    }
  });

  it('what is not a module is still refused with a TypeError', async () => {
    await expect(createEngine({ wasm: {} as WebAssembly.Module })).rejects.toThrow(TypeError);
    await expect(createEngine({ wasm: runInNewContext('({})') })).rejects.toThrow(TypeError);
  });

  it('where Symbol.dispose is missing, esbuild-compiled `using` still disposes qkv\'s objects', async () => {
    // dispose.ts and a `using` block, bundled and down-levelled for a runtime without `using`
    const { outputFiles } = await esbuild.build({
      stdin: {
        contents: `import { disposeSymbol } from './src/core/dispose.ts';
          const log = [];
          { using x = { [disposeSymbol]() { log.push('disposed'); } }; log.push('in'); }
          globalThis.result = { log, registered: disposeSymbol === Symbol.for('Symbol.dispose'), native: typeof Symbol.dispose };`,
        resolveDir: new URL('../', import.meta.url).pathname,
        loader: 'ts',
      },
      bundle: true, format: 'iife', target: 'es2022', write: false, logLevel: 'silent',
    });
    const context: { result?: { log: string[]; registered: boolean; native: string } } = {};
    runInNewContext(outputFiles[0].text, context);
    expect(context.result!.log).toEqual(['in', 'disposed']);
    // Node 20's contexts lack Symbol.dispose (Node defines it on the main realm's Symbol only); V8 >= 13.4 has it
    expect(context.result!.registered).toBe(context.result!.native === 'undefined');
  });
});
