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

/** Where a checkpoint is: a folder (a Node path, a file: or http(s) URL) or its files by name. */
export type CheckpointSource = string | URL | { files: Record<string, Blob | ArrayBuffer | Uint8Array> };

/** The types tensors are stored in: safetensors' F32, F16 and BF16; GGUF's also Q8_0 and Q4_0 blocks. */
export type CheckpointDtype = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0';

/** One tensor of a checkpoint, as its file's header describes it (D: the dtypes it may have, safetensors' by default). */
export interface CheckpointTensor<D extends CheckpointDtype = 'F32' | 'F16' | 'BF16'> {
  readonly name: string;
  /** Its type in the file; {@link Checkpoint.read} converts it to float32. */
  readonly dtype: D;
  readonly shape: readonly number[];
  /** The file that holds it, by name within the folder (a shard's name when sharded). */
  readonly file: string;
  /** Where its data starts in that file, in bytes from the file's start. */
  readonly offset: number;
  /** Its size in the file: elements times the dtype's size. */
  readonly byteLength: number;
}

/** An open checkpoint: its config, the table of its tensors, and tensors read one at a time. */
export interface Checkpoint {
  /** The file format the weights came from. */
  readonly format: 'safetensors' | 'gguf';
  /** config.json, parsed (for GGUF: synthesized from the metadata, with Hugging Face's keys). */
  readonly config: Record<string, unknown>;
  /** Every tensor of every shard, from the headers, by name. */
  readonly tensors: ReadonlyMap<string, CheckpointTensor<CheckpointDtype>>;
  /** The sum of the tensors' byteLength (the total that onProgress counts towards). */
  readonly totalBytes: number;
  /**
   * One tensor converted to float32: into `into` (a Float32Array whose length is the element count)
   * or a fresh array. A name not in {@link tensors} is an Error; a wrong `into` a TypeError or RangeError.
   */
  read(name: string, into?: Float32Array): Promise<Float32Array>;
  /**
   * Optional (GGUF only): a Q8_0 or Q4_0 tensor's blocks as stored (rows in Hugging Face's order), for
   * linear layers that keep them without requantizing; any other dtype is a TypeError.
   */
  readBlocks?(name: string): Promise<{ type: 'Q8_0' | 'Q4_0'; data: Uint8Array }>;
  /**
   * Another file of the checkpoint folder as text (tokenizer.json, tokenizer_config.json,
   * generation_config.json), or null if absent.
   */
  text(file: string): Promise<string | null>;
  /** Closes the files; a later read() or text() throws. Twice is harmless. */
  close(): Promise<void>;
}

/** Options of {@link openCheckpoint}. */
export interface OpenCheckpointOptions {
  /**
   * Cancels opening and every later read: checked before each read and passed to fetch(). An aborted
   * call rejects with the signal's reason. Default: none.
   */
  signal?: AbortSignal;
  /**
   * Called after each tensor read with the bytes of the distinct tensors read so far (so loadedBytes
   * reaches totalBytes once every tensor has been read once). Default: none.
   */
  onProgress?: (p: { loadedBytes: number; totalBytes: number }) => void;
}

/**
 * One file of a checkpoint folder, read at byte offsets. The format readers see only this, so a new
 * place to read from is one implementation of it.
 */
export interface CheckpointFile {
  /** Its name within the folder, for messages. */
  readonly name: string;
  /** Its size in bytes, or undefined while not known (a server that did not say). */
  readonly size: number | undefined;
  /**
   * The largest read worth making at once: a tensor bigger than this is read and converted in pieces
   * of this many bytes (Infinity: one read per tensor).
   */
  readonly chunkBytes: number;
  /**
   * Bytes [begin, end), fewer when the file ends first. `into` (at least end - begin bytes) is a
   * buffer the reader may fill and return a view of; a reader that holds the bytes already returns a
   * view of its own instead.
   */
  read(begin: number, end: number, signal?: AbortSignal, into?: Uint8Array): Promise<Uint8Array>;
  /** True when read() fills `into` (a file on disk): callers then pass one, reused from read to read. */
  readonly fillsInto?: boolean;
  close(): Promise<void>;
}

/** A checkpoint folder: its files by name. */
export interface CheckpointFolder {
  /** The path or URL, for messages. */
  readonly where: string;
  /** The file, or null if the folder has none of that name. */
  open(file: string, signal?: AbortSignal): Promise<CheckpointFile | null>;
  /** The file as text, or null if absent. */
  text(file: string, signal?: AbortSignal): Promise<string | null>;
}

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
