// Everywhere but Node (browsers, workers, Deno's and bundlers' browser targets): fetch() the .wasm.
// package.json "imports" maps #fetch-bytes here for every condition except "node"; this file must
// never import a Node built-in (test/browser/bundles.test.ts checks the bundles).
import { wasmNotFound } from './wasmNotFound.js';

/** The bytes at `where`, fetched; a relative string resolves against the page, as fetch() does. */
export async function fetchBytes(where: URL | string): Promise<ArrayBuffer | Uint8Array> {
  const response = await fetch(where);
  if (!response.ok) throw wasmNotFound(where, `HTTP ${response.status}`);
  return response.arrayBuffer();
}
