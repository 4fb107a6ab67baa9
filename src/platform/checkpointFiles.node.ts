// Node's side of #checkpoint-files: a checkpoint folder on disk (a path or a file: URL), its files read
// at byte offsets through FileHandles, a chunk at a time into a buffer the reader reuses. package.json
// "imports" maps #checkpoint-files here under the "node" condition only, so that no bundle for browsers
// sees node:fs (checkpointFiles.browser.ts is the other side). Parsing is not here: see src/models/.
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CheckpointFile, CheckpointFolder } from '../models/checkpointTypes.js';

/** A tensor bigger than this is read and converted in pieces of this many bytes. */
const CHUNK_BYTES = 1 << 20;

/**
 * The folder at a path or file: URL; null for any other URL (the caller fetches those). A path that
 * does not exist or is not a folder is an Error naming it.
 */
export async function openLocalFolder(source: string | URL): Promise<CheckpointFolder | null> {
  let path: string;
  if (source instanceof URL) {
    if (source.protocol !== 'file:') return null;
    path = fileURLToPath(source);
  } else if (/^[a-z][a-z0-9+.-]+:/i.test(source)) {
    // a scheme (two letters at least, so that C:\ stays a path)
    if (!/^file:/i.test(source)) return null;
    path = fileURLToPath(source);
  } else {
    path = source;
  }
  let isFolder: boolean;
  try {
    isFolder = (await stat(path)).isDirectory();
  } catch (error) {
    if (isMissing(error)) throw new Error(`qkv: ${path}: no such folder`, { cause: error });
    throw error;
  }
  if (!isFolder) throw new Error(`qkv: ${path}: not a folder (a checkpoint is a folder with config.json and model.safetensors)`);
  return {
    where: path,
    async open(file) {
      let handle: FileHandle;
      try {
        handle = await open(join(path, file), 'r');
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
      try {
        return nodeFile(file, handle, (await handle.stat()).size);
      } catch (error) {
        await handle.close();
        throw error;
      }
    },
    async text(file) {
      try {
        return await readFile(join(path, file), 'utf8');
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
    },
  };
}

function nodeFile(name: string, handle: FileHandle, size: number): CheckpointFile {
  let closed: Promise<void> | null = null;
  return {
    name,
    size,
    chunkBytes: CHUNK_BYTES,
    fillsInto: true,
    async read(begin, end, _signal, into) {
      const length = Math.max(0, end - begin);
      const buffer = into ?? new Uint8Array(length);
      let filled = 0;
      // a read may return fewer bytes than asked; 0 is the end of the file
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, begin + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    },
    close: () => (closed ??= handle.close()),
  };
}

const isMissing = (error: unknown) => ['ENOENT', 'ENOTDIR'].includes((error as { code?: string }).code ?? '');
