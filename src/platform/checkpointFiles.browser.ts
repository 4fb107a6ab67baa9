// Everywhere but Node (browsers, workers, bundlers' browser targets): there is no file system to open a
// folder in, so a checkpoint comes from an http(s) URL (read by src/models/checkpoint.ts with fetch) or
// from the page's files ({ files }). package.json "imports" maps #checkpoint-files here for every
// condition except "node"; this file must never import a Node built-in (test/browser/bundles.test.ts
// checks the bundles). checkpointFiles.node.ts is the other side and exports the same signature.
import type { CheckpointFolder } from '../models/checkpointTypes.js';

/**
 * Always null (the caller fetches the URL, a string without a scheme being relative to the page),
 * except for a file: URL, which is a TypeError: a page cannot read a folder from disk.
 */
export async function openLocalFolder(source: string | URL): Promise<CheckpointFolder | null> {
  if (source instanceof URL ? source.protocol === 'file:' : /^file:/i.test(source)) {
    throw new TypeError(`qkv: openCheckpoint: cannot read ${String(source)}: reading a folder from disk needs Node; in a browser pass { files } (from <input type=file>) or an http(s) URL`);
  }
  return null;
}
