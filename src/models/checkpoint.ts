// A checkpoint on disk, on a server or in a page's files, read one tensor at a time.
//
// Three layers, each knowing only the one below:
//   openCheckpoint    picks the folder and the format        (this file)
//   a format reader   headers, validation, dtype conversion  (safetensors.ts; GGUF will sit beside it)
//   a folder          files by name, read at byte offsets    (here for { files } and http(s) URLs; paths
//                                                             and file: URLs in #checkpoint-files, whose
//                                                             browser side has no file system)
// A reader never holds a whole file: it reads a header, then each tensor's bytes when asked, converting
// them to float32 straight into the caller's array (see safetensors.ts for the chunking).
import { openLocalFolder } from '#checkpoint-files';
import { openGguf } from './gguf.js';
import { openSafetensors } from './safetensors.js';

export type { Checkpoint, CheckpointDtype, CheckpointFile, CheckpointFolder, CheckpointSource, CheckpointTensor, OpenCheckpointOptions } from './checkpointTypes.js';

import type { Checkpoint, CheckpointFile, CheckpointFolder, CheckpointSource, OpenCheckpointOptions } from './checkpointTypes.js';

/**
 * Opens a checkpoint: reads config.json and every weight file's header (nothing else), validating them.
 * A malformed file is an Error naming the file and, where it applies, the tensor.
 */
export async function openCheckpoint(source: CheckpointSource, options: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  const { signal, onProgress } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('qkv: openCheckpoint: options.signal must be an AbortSignal');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('qkv: openCheckpoint: options.onProgress must be a function');
  signal?.throwIfAborted();
  // GGUF (llama.cpp's single-file format, gguf.ts): a source that is a .gguf file, or { files } holding
  // one and no safetensors, is read by openGguf from its folder (the files beside it are its text()),
  // and comes back as a Checkpoint whose config is built from the GGUF metadata.
  if (typeof source === 'string' || source instanceof URL) {
    const gguf = ggufSource(source);
    if (gguf !== null) return openGguf((await openLocalFolder(gguf.folder)) ?? urlFolder(toUrl(gguf.folder)), gguf.file, { signal, onProgress });
    const folder = (await openLocalFolder(source)) ?? urlFolder(toUrl(source));
    return openSafetensors(folder, { signal, onProgress });
  }
  const files = (source as { files?: unknown } | null)?.files;
  if (files === null || typeof files !== 'object') {
    throw new TypeError('qkv: openCheckpoint: source must be a folder path, a URL or { files: { [name]: Blob | ArrayBuffer | Uint8Array } }');
  }
  const names = Object.keys(files);
  const gguf = names.find((name) => /\.gguf$/i.test(name));
  const folder = filesFolder(files as Record<string, Blob | ArrayBuffer | Uint8Array>);
  if (gguf !== undefined && !names.some((name) => /\.safetensors(\.index\.json)?$/.test(name))) return openGguf(folder, gguf, { signal, onProgress });
  return openSafetensors(folder, { signal, onProgress });
}

// A .gguf path or URL: the folder that holds it, and its name there (decoded for paths and file: URLs).
function ggufSource(source: string | URL): { folder: string | URL; file: string } | null {
  if (source instanceof URL) {
    if (!/\.gguf$/i.test(source.pathname)) return null;
    const last = source.pathname.slice(source.pathname.lastIndexOf('/') + 1);
    return { folder: new URL('./', source), file: source.protocol === 'file:' ? decodeURIComponent(last) : last };
  }
  const path = source.replace(/[?#].*$/, '');
  if (!/\.gguf$/i.test(/^[a-z][a-z0-9+.-]+:/i.test(source) ? path : source)) return null;
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  const last = path.slice(cut + 1);
  return { folder: cut < 0 ? '.' : path.slice(0, cut + 1), file: /^file:/i.test(source) ? decodeURIComponent(last) : last };
}

// A string without a scheme is a URL relative to the page (where there is one); the browser side of
// #checkpoint-files hands such strings over, the Node side takes them as paths.
function toUrl(source: string | URL): URL {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let url: URL;
  try {
    url = new URL(source, base);
  } catch (error) {
    throw new TypeError(`qkv: openCheckpoint: "${source}" is a folder path, which needs Node; here pass an http(s) URL or { files }`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`qkv: openCheckpoint: cannot read a checkpoint from ${url.protocol} URLs (${url.href}); use http(s), a folder path in Node, or { files }`);
  }
  // the URL names the folder: resolve its files against it with a trailing slash
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

// ---------------------------------------------------------------------------------------------------
// { files }: a page's File objects (Blobs, read by slices) or bytes already in memory.

const BLOB_CHUNK_BYTES = 4 << 20; // a Blob slice per 4 MB: few awaits, a bounded buffer for each

function filesFolder(files: Record<string, Blob | ArrayBuffer | Uint8Array>): CheckpointFolder {
  const entry = (file: string) => {
    if (!Object.hasOwn(files, file)) return null;
    const value = files[file];
    if (typeof Blob !== 'undefined' && value instanceof Blob) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    throw new TypeError(`qkv: openCheckpoint: files["${file}"] must be a Blob, an ArrayBuffer or a Uint8Array`);
  };
  return {
    where: '{ files }',
    async open(file) {
      const value = entry(file);
      if (value === null) return null;
      if (value instanceof Uint8Array) {
        return { name: file, size: value.length, chunkBytes: Number.POSITIVE_INFINITY, read: async (begin, end) => value.subarray(begin, end), close: async () => {} };
      }
      return {
        name: file,
        size: value.size,
        chunkBytes: BLOB_CHUNK_BYTES,
        async read(begin, end) {
          return new Uint8Array(await value.slice(begin, end).arrayBuffer());
        },
        close: async () => {},
      };
    },
    async text(file) {
      const value = entry(file);
      if (value === null) return null;
      return value instanceof Uint8Array ? new TextDecoder().decode(value) : value.text();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// http(s): one ranged GET per read (`Range: bytes=a-b`, b inclusive), the first one asking for the
// 8 bytes that start a safetensors file, so a header costs two small requests. A server that ignores
// Range answers 200 with the whole file: that body is read once and kept, and every later read of the
// file is served from it (correct, but the whole file is then held in memory and downloaded at once).

function urlFolder(base: URL): CheckpointFolder {
  const where = base.href;
  return {
    where,
    async open(file, signal) {
      const url = new URL(file, base);
      const response = await fetch(url, { headers: { Range: 'bytes=0-7' }, signal });
      if (response.status === 404 || response.status === 410) {
        await response.body?.cancel();
        return null;
      }
      return urlFile(file, url, response);
    },
    async text(file, signal) {
      const response = await fetch(new URL(file, base), { signal });
      if (response.status === 404 || response.status === 410) {
        await response.body?.cancel();
        return null;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`qkv: ${file}: HTTP ${response.status} from ${new URL(file, base).href}`);
      }
      return response.text();
    },
  };
}

async function urlFile(name: string, url: URL, first: Response): Promise<CheckpointFile> {
  let whole: Uint8Array | null = null; // the body of a 200: the server ignored Range
  let size: number | undefined;
  // what one response holds: its bytes and where they start
  const take = async (response: Response, begin: number): Promise<Uint8Array> => {
    if (response.status === 200) {
      whole = new Uint8Array(await response.arrayBuffer());
      size = whole.length;
      return whole.subarray(begin);
    }
    if (response.status === 416) {
      // nothing at or after `begin`: the file is shorter (Content-Range: bytes */size)
      await response.body?.cancel();
      const total = /\/(\d+)\s*$/.exec(response.headers.get('content-range') ?? '');
      if (total !== null) size = Number(total[1]);
      return new Uint8Array(0);
    }
    if (response.status !== 206) {
      await response.body?.cancel();
      throw new Error(`qkv: ${name}: HTTP ${response.status} from ${url.href}`);
    }
    const range = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(response.headers.get('content-range') ?? '');
    if (range === null || Number(range[1]) !== begin) {
      await response.body?.cancel();
      throw new Error(`qkv: ${name}: the server answered a request for bytes from ${begin} with Content-Range "${response.headers.get('content-range')}" (${url.href})`);
    }
    if (range[3] !== '*') size = Number(range[3]);
    return new Uint8Array(await response.arrayBuffer());
  };
  const head = await take(first, 0); // the first bytes, from the opening request
  return {
    name,
    get size() {
      return size;
    },
    chunkBytes: Number.POSITIVE_INFINITY,
    async read(begin, end, signal) {
      if (end <= begin) return new Uint8Array(0);
      if (whole !== null) return whole.subarray(begin, end);
      if (end <= head.length) return head.subarray(begin, end);
      if (size !== undefined && begin >= size) return new Uint8Array(0);
      signal?.throwIfAborted();
      const bytes = await take(await fetch(url, { headers: { Range: `bytes=${begin}-${end - 1}` }, signal }), begin);
      return bytes.subarray(0, end - begin);
    },
    async close() {
      whole = null;
    },
  };
}
