// Writing safetensors files in tests, and serving a folder over HTTP with or without Range support.
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export type Dtype = 'F32' | 'F16' | 'BF16';

/** A tensor to write: F32 data as numbers, F16 and BF16 as raw 16-bit patterns. */
export interface TensorSpec {
  dtype: Dtype | string;
  shape: number[];
  /** F32: values; F16/BF16: bit patterns; or the raw bytes (any dtype). */
  data: ArrayLike<number> | Uint8Array;
}

/** The bytes of a safetensors file holding `tensors` in order, contiguous, header padded by `pad` spaces. */
export function safetensors(tensors: Record<string, TensorSpec>, options: { metadata?: Record<string, string>; pad?: number } = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.data instanceof Uint8Array ? t.data : encode(t.dtype as Dtype, t.data);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  return raw(JSON.stringify(header) + ' '.repeat(options.pad ?? 0), concat(parts));
}

/** A file with this header text (or object, stringified) and these data bytes, the length prefix computed. */
export function raw(header: string | object, data: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

export function encode(dtype: Dtype, values: ArrayLike<number>): Uint8Array {
  if (dtype === 'F32') {
    const out = new Uint8Array(values.length * 4), view = new DataView(out.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
    return out;
  }
  const out = new Uint8Array(values.length * 2), view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(2 * i, values[i], true);
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** binary16 bits -> number, from the IEEE 754 definition (independent of the reader's table). */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (e - 15) * (1 + m / 1024);
}

/** bfloat16 bits -> number: the high half of a float32. */
export function bf16ToNumber(h: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, h << 16);
  return view.getFloat32(0);
}

export interface Served {
  /** The folder's URL, without a trailing slash. */
  url: string;
  /** Every request: path and Range header ('' when none). */
  requests: { path: string; range: string }[];
  close(): Promise<void>;
}

/**
 * Serves `dir` on 127.0.0.1. With `range` (default true), a `Range: bytes=a-b` request gets a 206 (or a
 * 416 past the end), as static servers do; without it every GET gets the whole file with a 200.
 * `delay(path)` holds a response back that many milliseconds (for abort tests).
 */
export async function serveFolder(dir: string, options: { range?: boolean; delay?: (path: string, range: string) => number } = {}): Promise<Served> {
  const requests: Served['requests'] = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\//, '');
    const range = req.headers.range ?? '';
    requests.push({ path, range });
    const wait = options.delay?.(path, range) ?? 0;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let bytes: Buffer;
    try {
      if (path.includes('..') || !(await stat(join(dir, path))).isFile()) throw new Error('not a file');
      bytes = await readFile(join(dir, path));
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    const match = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (options.range === false || match === null) {
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      return;
    }
    const begin = Number(match[1]), end = Math.min(match[2] === '' ? bytes.length - 1 : Number(match[2]), bytes.length - 1);
    if (begin >= bytes.length) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-range': `bytes ${begin}-${end}/${bytes.length}`, 'content-length': end - begin + 1 }).end(bytes.subarray(begin, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
