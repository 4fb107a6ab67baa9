// Node's way to get the .wasm bytes: file paths and file: URLs are read from disk, anything else is fetched.
// package.json "imports" maps #fetch-bytes here under the "node" condition only, so that no bundle for
// browsers ever sees node:fs (fetchBytes.browser.ts is the other side).
import { readFile } from 'node:fs/promises';
import { wasmNotFound } from './wasmNotFound.js';

/** The bytes at `where`: a path or file: URL from disk, an http(s): or data: URL with fetch(). */
export async function fetchBytes(where: URL | string): Promise<ArrayBuffer | Uint8Array> {
  // a string without a scheme is a file path
  const url = where instanceof URL ? where : /^[a-z][a-z0-9+.-]+:/i.test(where) ? new URL(where) : null;
  if (url === null || url.protocol === 'file:') {
    try {
      return await readFile(url ?? where);
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') throw wasmNotFound(where, 'no such file', error);
      throw error;
    }
  }
  const response = await fetch(url);
  if (!response.ok) throw wasmNotFound(where, `HTTP ${response.status}`);
  return response.arrayBuffer();
}
