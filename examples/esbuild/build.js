// Bundles src/main.js with esbuild and writes dist/index.html: one self-contained HTML file, the
// script inlined, the wasm inside it as base64 (qkv/inline). It opens from disk (file://) as well as
// from any static server, with no .wasm to serve and no bundler plugin.
//
//   npm run build -w examples/esbuild      then open examples/esbuild/dist/index.html
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as esbuild from 'esbuild';

const here = (path) => new URL(path, import.meta.url);

const result = await esbuild.build({
  entryPoints: [here('src/main.js').pathname],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  write: false,
  metafile: true,
  logLevel: 'warning',
});
const js = result.outputFiles[0].text.replace(/<\/script/gi, '<\\/script'); // nothing may close the inline <script> early
const html = readFileSync(here('index.html'), 'utf8').replace('<!-- bundle -->', () => `<script type="module">\n${js}</script>`);
mkdirSync(here('dist'), { recursive: true });
writeFileSync(here('dist/index.html'), html);
// which files went in: test/browser checks that no Node-only module did
writeFileSync(here('dist/meta.json'), JSON.stringify(result.metafile, null, 1));
console.log(`esbuild: dist/index.html, ${(html.length / 1024).toFixed(1)} KiB, ${Object.keys(result.metafile.inputs).length} modules`);
