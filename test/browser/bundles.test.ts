// What the bundlers emitted for browsers: no Node built-in may be in there (the Node paths of qkv load
// only under the "node" condition), and the .wasm must be where the default entry looks for it.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { esbuildExample, repo, requireBuilt, viteExample, webpackExample } from './support.js';

/** Every file under dir, recursively. */
const filesUnder = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));

const BUILTINS = ['fs', 'fs/promises', 'path', 'os', 'url', 'module', 'worker_threads', 'child_process', 'crypto', 'util', 'stream', 'buffer'];
/**
 * A Node built-in as a module specifier: `node:` anything, or a bare built-in name in an import,
 * an export-from, a dynamic import() or a require() (a variable that happens to be called `fs` is not one).
 */
const NODE_REFERENCE = new RegExp(
  String.raw`["'\x60]node:[a-z_/]+["'\x60]|(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)["'\x60](?:${BUILTINS.join('|')})["'\x60]`,
);

/**
 * The one exception: llama.cpp's wasm glue (wllama, which examples/vite's models page runs beside qkv
 * on a GGUF file) is Emscripten's, whose Node paths sit behind `if (ENVIRONMENT_IS_NODE)` or
 * `ENVIRONMENT_IS_NODE ? … :` and are never taken in a browser. Only a reference right after that
 * guard, in a chunk that is wllama's, is let through.
 */
const emscriptenNodePath = (text: string, at: number) => text.includes('Wllama') && /ENVIRONMENT_IS_NODE(\)\{var \w+=|\?)$/.test(text.slice(Math.max(0, at - 40), at));

function nodeReferences(files: string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(new RegExp(NODE_REFERENCE.source, 'g'))) {
      if (emscriptenNodePath(text, m.index)) continue;
      found.push(`${relative(repo, file)}: ${text.slice(Math.max(0, m.index - 60), m.index + m[0].length + 20)}`);
      break;
    }
    // Vite stands a module it will not bundle for browsers in for __vite-browser-external
    if (text.includes('__vite-browser-external') || file.includes('__vite-browser-external')) found.push(`${relative(repo, file)}: __vite-browser-external`);
  }
  return found;
}

describe('browser bundles', () => {
  requireBuilt();

  it('the pattern catches what it must and nothing else', () => {
    for (const bad of ["import('node:fs/promises')", 'from"fs"', "require('worker_threads')", 'import("path")', "import 'os'", 'await import(`node:os`)']) {
      expect(NODE_REFERENCE.test(bad), bad).toBe(true);
    }
    for (const fine of ['const fs=1;fs.x', '"path"', "createElementNS(ns, 'path')", 'fetch(url)', 'a.os="x"']) {
      expect(NODE_REFERENCE.test(fine), fine).toBe(false);
    }
  });

  it('examples/vite/dist has no Node built-in, and emits the wasm the default entry finds', () => {
    const files = filesUnder(join(viteExample, 'dist'));
    const scripts = files.filter((f) => /\.(m?js|html)$/.test(f));
    expect(scripts.length).toBeGreaterThan(3);
    expect(nodeReferences(scripts)).toEqual([]);
    const wasm = files.filter((f) => f.endsWith('.wasm')).map((f) => relative(join(viteExample, 'dist'), f));
    expect(wasm).toEqual(expect.arrayContaining([expect.stringMatching(/^assets\/qkv-[\w-]+\.wasm$/), expect.stringMatching(/^assets\/qkv-relaxed-[\w-]+\.wasm$/)]));
  });

  it('examples/webpack/dist (no webpack configuration) has no Node built-in, and emits the four wasm builds and the worker', () => {
    const files = filesUnder(join(webpackExample, 'dist')).map((f) => relative(join(webpackExample, 'dist'), f));
    const scripts = files.filter((f) => f.endsWith('.js'));
    expect(scripts).toContain('main.js');
    expect(nodeReferences(scripts.map((f) => join(webpackExample, 'dist', f)))).toEqual([]);
    // webpack names emitted assets by content hash: the four builds are four distinct files
    expect(files.filter((f) => /^[0-9a-f]{20}\.wasm$/.test(f))).toHaveLength(4);
    // the threads' Web Worker is a chunk of its own, loaded by a chunk that only threads import
    expect(scripts.length).toBeGreaterThanOrEqual(3);
  });

  it('examples/esbuild/dist is one HTML file with no Node built-in, built from the browser side of #fetch-bytes', () => {
    const files = filesUnder(join(esbuildExample, 'dist'));
    expect(files.map((f) => relative(esbuildExample, f)).sort()).toEqual(['dist/index.html', 'dist/meta.json']);
    expect(nodeReferences([join(esbuildExample, 'dist/index.html')])).toEqual([]);
    const inputs = Object.keys(JSON.parse(readFileSync(join(esbuildExample, 'dist/meta.json'), 'utf8')).inputs as object);
    expect(inputs.some((f) => f.endsWith('dist/platform/fetchBytes.browser.js'))).toBe(true);
    expect(inputs.filter((f) => f.includes('.node.') || f.startsWith('node:'))).toEqual([]);
    // qkv/inline is its own small bundle on top of the main one: one copy of the code
    expect(inputs.filter((f) => f.includes('/dist/') && !f.includes('/dist/platform/')).map((f) => f.slice(f.indexOf('dist/'))).sort())
      .toEqual(['dist/bundle/inline.js', 'dist/bundle/qkv.js']);
  });
});
