// The messages a user meets first: a wasm that cannot be loaded says what to do about it, and
// qkv/inline asked for threads says why it runs one, not that an options.wasm (never passed) is wrong.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEngine } from '../src/index.js';
import * as inline from '../src/inline.js';
import { fetchBytes as fetchInBrowsers } from '../src/platform/fetchBytes.browser.js';

const WAYS_OUT = /pass its URL, its bytes or a compiled WebAssembly\.Module as createEngine\(\{ wasm \}\), or import 'qkv\/inline'/;

let server: ReturnType<typeof createServer>;
let base: string;
beforeAll(async () => {
  server = createServer((_, response) => { response.writeHead(404).end('not found'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => {
  server.close(() => resolve());
  server.closeAllConnections();
}));

describe('a wasm that cannot be loaded', () => {
  it('a missing file names the path and the two ways out', async () => {
    const error = await createEngine({ wasm: '/nonexistent/dist/qkv.wasm' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^qkv: could not load the wasm from \/nonexistent\/dist\/qkv\.wasm: no such file\./);
    expect((error as Error).message).toMatch(WAYS_OUT);
    expect(((error as Error).cause as { code?: string }).code).toBe('ENOENT');
  });

  it('an HTTP 404 says so, in Node and on the browsers\' side of #fetch-bytes', async () => {
    await expect(createEngine({ wasm: `${base}/assets/qkv.wasm` })).rejects.toThrow(/could not load the wasm from http:\/\/127\.0\.0\.1:\d+\/assets\/qkv\.wasm: HTTP 404\./);
    await expect(createEngine({ wasm: new URL(`${base}/qkv.wasm`) })).rejects.toThrow(WAYS_OUT);
    await expect(fetchInBrowsers(`${base}/qkv.wasm`)).rejects.toThrow(/HTTP 404\. If a bundler or a server moved or dropped the \.wasm/);
    await expect(fetchInBrowsers(`${base}/qkv.wasm`)).rejects.toThrow(WAYS_OUT);
  });
});

describe('qkv/inline asked for threads', () => {
  it('runs one thread and says why once, without mentioning an options.wasm', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const one = await inline.createEngine();
      expect(warn).not.toHaveBeenCalled();
      one.dispose();
      for (const threads of [2, 'auto'] as const) {
        const engine = await inline.createEngine({ threads });
        expect(engine.info.threads).toBe(1);
        expect(engine.kernelRegression(inline.tensor([57], [1]), inline.tensor([56, 58], [2]), inline.tensor([43, 48], [2])).output.data[0]).toBe(45.5);
        engine.dispose();
      }
      expect(warn).toHaveBeenCalledTimes(1);
      const message = String(warn.mock.calls[0][0]);
      expect(message).toMatch(/^qkv\/inline: threads: 2 asked for, but qkv\/inline embeds only the single-threaded wasm builds\. Running on one thread/);
      expect(message).not.toMatch(/options\.wasm/);
      // a bad count is still refused, as by the main entry
      await expect(inline.createEngine({ threads: 0 })).rejects.toThrow(RangeError);
      await expect(inline.createEngine({ threads: 1.5 })).rejects.toThrow(RangeError);
    } finally {
      warn.mockRestore();
    }
  });
});
