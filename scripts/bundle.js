// Bundles the compiled entries (dist/) with esbuild, run by `npm run build` after tsc:
//   dist/bundle/qkv.js     dist/index.js and everything it imports, as one ES module (loading some
//                          30 small modules cost 15 ms of a cold start); #threads, #fetch-bytes and
//                          @assemblyscript/loader stay imports, resolved by the "node" condition or
//                          the user's bundler
//   dist/bundle/inline.js  dist/inline.js and the base64 wasm, importing the API from ./qkv.js: an app
//                          that imports both qkv and qkv/inline gets one copy of the code
//   dist/bundle/edge.js    dist/edge.js (the "workerd" and "edge-light" conditions), importing the API
//                          from ./qkv.js and build/qkv.wasm?module, which Wrangler and Next.js compile
// No source maps are built or shipped: the bundles are unminified ES modules with the sources' names,
// and maps with the sources' text in them would double the package.
import * as esbuild from 'esbuild';

const here = (path) => new URL(path, import.meta.url).pathname;
const common = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  logLevel: 'warning',
  external: ['#threads', '#fetch-bytes', '#checkpoint-files', '@assemblyscript/loader'],
};

await esbuild.build({ ...common, entryPoints: [here('../dist/index.js')], outfile: here('../dist/bundle/qkv.js') });

/** Leaves dist/inline.js's and dist/edge.js's import of the main entry as an import of the main bundle. */
const mainBundle = {
  name: 'qkv-main-bundle',
  setup(build) {
    build.onResolve({ filter: /^\.\/index\.js$/ }, (args) => (/\/dist\/(inline|edge)\.js$/.test(args.importer) ? { path: './qkv.js', external: true } : undefined));
  },
};
await esbuild.build({ ...common, sourcemap: false, entryPoints: [here('../dist/inline.js')], outfile: here('../dist/bundle/inline.js'), plugins: [mainBundle] });

/** dist/edge.js's `../build/qkv.wasm?module`, one folder deeper from dist/bundle/. */
const wasmModule = {
  name: 'qkv-wasm-module',
  setup(build) {
    build.onResolve({ filter: /\.wasm\?module$/ }, (args) => ({ path: `../${args.path}`, external: true }));
  },
};
await esbuild.build({ ...common, entryPoints: [here('../dist/edge.js')], outfile: here('../dist/bundle/edge.js'), plugins: [mainBundle, wasmModule] });
