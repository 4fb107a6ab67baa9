// The package as an app's bundler sees it: both entries share one copy of the code, and the shipped
// JavaScript points at no source map (none is shipped). The tarball's contents and size are checked by
// scripts/pack-report.js (npm run lint:package, in CI).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../', import.meta.url));

/** Bundles `source` for browsers as an app of the repo would, resolving `qkv` through package.json "exports". */
async function bundle(source: string) {
  const result = await esbuild.build({
    stdin: { contents: source, resolveDir: repo, loader: 'js' },
    bundle: true, format: 'esm', platform: 'browser', write: false, metafile: true, logLevel: 'silent',
  });
  return { inputs: Object.keys(result.metafile.inputs), text: result.outputFiles[0].text };
}

describe('the built package', () => {
  it('an app that imports qkv and qkv/inline bundles one copy of the code: one tensor()', async () => {
    const both = await bundle(`import { tensor } from 'qkv'; import { tensor as t2, createEngine } from 'qkv/inline'; console.log(tensor === t2, createEngine);`);
    // the two bundles and the browser sides of #fetch-bytes and #threads (dist/platform/), no other module of dist/
    const fromDist = both.inputs.filter((f) => f.startsWith('dist/') && !f.startsWith('dist/platform/')).sort();
    expect(fromDist).toEqual(['dist/bundle/inline.js', 'dist/bundle/qkv.js']);
    expect(both.inputs).toContain('dist/platform/fetchBytes.browser.js');
    expect(both.text.match(/function tensor\(/g)).toHaveLength(1);
    // and qkv alone does not pull in the embedded wasm
    const main = await bundle(`import { tensor } from 'qkv'; console.log(tensor);`);
    expect(main.inputs.filter((f) => f.startsWith('dist/'))).not.toContain('dist/bundle/inline.js');
    expect(main.text.length).toBeLessThan(both.text.length - 90_000);
  });

  it('Wrangler and Vercel resolve the edge entry, which imports build/qkv.wasm as a module; a browser or a web worker never does', async () => {
    for (const conditions of [['workerd', 'worker', 'browser'], ['edge-light', 'worker', 'browser']]) {
      const wasm: string[] = [];
      const result = await esbuild.build({
        stdin: { contents: `import { createEngine, tensor } from 'qkv'; console.log(createEngine, tensor);`, resolveDir: repo, loader: 'js' },
        bundle: true, format: 'esm', platform: 'neutral', mainFields: ['browser', 'module', 'main'], conditions, write: false, metafile: true, logLevel: 'silent',
        plugins: [{ name: 'wasm-module', setup: (b) => b.onResolve({ filter: /\.wasm\?module$/ }, (args) => { wasm.push(relative(repo, join(args.resolveDir, args.path))); return { path: args.path, external: true }; }) }],
      });
      expect(Object.keys(result.metafile.inputs).filter((f) => f.startsWith('dist/bundle/')).sort()).toEqual(['dist/bundle/edge.js', 'dist/bundle/qkv.js']);
      expect(wasm).toEqual(['build/qkv.wasm?module']);
    }
    const worker = await esbuild.build({
      stdin: { contents: `import { createEngine } from 'qkv'; console.log(createEngine);`, resolveDir: repo, loader: 'js' },
      bundle: true, format: 'esm', platform: 'browser', conditions: ['worker'], write: false, metafile: true, logLevel: 'silent',
    });
    expect(Object.keys(worker.metafile.inputs)).not.toContain('dist/bundle/edge.js');
  });

  it('no shipped JavaScript refers to a source map', () => {
    const js = readdirSync(join(repo, 'dist'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name));
    expect(js.length).toBeGreaterThan(20);
    expect(js.filter((f) => readFileSync(f, 'utf8').includes('sourceMappingURL')).map((f) => relative(repo, f))).toEqual([]);
  });
});
