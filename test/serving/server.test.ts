// The OpenAI-compatible server, in process on 127.0.0.1 (port 0): every endpoint, plain and streamed
// answers equal to decoder.generate, text through a tokenizer.json and chat template written here (a
// word-level tokenizer over the fixtures' 48 ids), malformed requests (400 with OpenAI's error shape),
// 429 past the waiting bound, a client that goes away mid-stream (its blocks back within a step),
// /metrics, and shutdown.
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Decoder, loadDecoder, reference } from '../../src/index.js';
import { createServer, type QkvServer } from '../../src/serving/server.js';
import { loadText } from '../../src/serving/text.js';

const FIXTURE = new URL('../fixtures/decoders/qwen2/', import.meta.url).pathname;
const word = (i: number) => (i === 0 ? '<pad>' : i === 1 ? '<s>' : i === 2 ? '</s>' : `w${i}`);

/** The qwen2 fixture with a word-level tokenizer ("w3 w4 …") and a chat template. */
async function checkpointWithText(dir: string): Promise<void> {
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) await symlink(join(FIXTURE, f), join(dir, f));
  const vocab: Record<string, number> = {};
  for (let i = 0; i < 48; i++) vocab[word(i)] = i;
  const special = (id: number) => ({ id, content: word(id), special: true, single_word: false, lstrip: false, rstrip: false, normalized: false });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', added_tokens: [special(0), special(1), special(2)], normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' }, post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: false }, model: { type: 'WordLevel', vocab, unk_token: '<pad>' },
  }));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({
    bos_token: '<s>', eos_token: '</s>',
    chat_template: "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}w5 w6{% endif %}",
  }));
}

let dir: string;
let decoder: Decoder;
let plain: Decoder;
let server: QkvServer;
let bare: QkvServer;
let base: string;
let bareBase: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qkv-serve-'));
  await checkpointWithText(dir);
  decoder = await loadDecoder(dir, { engine: reference, maxTokens: 256, kv: { blockSize: 4 } });
  server = createServer({ decoder, modelName: 'tiny', text: await loadText(dir), maxWaiting: 1, batcher: { maxBatchTokens: 48, maxSequences: 2 } });
  base = `http://127.0.0.1:${(await server.listen(0)).port}`;
  plain = await loadDecoder(FIXTURE, { engine: reference, maxTokens: 256, kv: { blockSize: 4 } });
  bare = createServer({ decoder: plain, modelName: 'bare', text: await loadText(FIXTURE) });
  bareBase = `http://127.0.0.1:${(await bare.listen(0)).port}`;
});
afterAll(async () => {
  await server?.shutdown(100);
  await bare?.shutdown(100);
  decoder?.dispose();
  plain?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const post = (path: string, body: unknown, at = base) =>
  fetch(`${at}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

/** The data lines of an SSE response, parsed (the last is '[DONE]'). */
async function events(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => {
    const d = e.slice(6);
    return d === '[DONE]' ? d : JSON.parse(d);
  });
}

async function generate(d: Decoder, prompt: number[], maxNewTokens: number, stop: number[] = []): Promise<number[]> {
  const out: number[] = [];
  for await (const t of d.generate(prompt, { maxNewTokens, stop })) out.push(t);
  return out;
}

const waitFor = async (ok: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  return ok();
};

describe('the server', () => {
  it('GET /health, /v1/models; 404 and 405', async () => {
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string; max_model_len: number }[] };
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
    expect(models.data[0].max_model_len).toBe(64);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/v1/completions`)).status).toBe(405);
  });

  it('POST /v1/completions with token ids: the tokens of generate, finish_reason and usage', async () => {
    const prompt = [3, 17, 40, 5, 28, 12];
    const expected = await generate(decoder, prompt, 8, [2]);
    const res = await post('/v1/completions', { model: 'tiny', prompt, max_tokens: 8, temperature: 0, some_unknown_field: { x: 1 } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; choices: { text: string; token_ids: number[]; finish_reason: string }[]; usage: Record<string, number> };
    expect(body.object).toBe('text_completion');
    expect(body.choices[0].token_ids).toEqual(expected);
    expect(body.choices[0].text).toBe(expected.map(word).filter((w) => !w.startsWith('<')).join(' '));
    expect(body.choices[0].finish_reason).toBe(expected.length === 8 ? 'length' : 'stop');
    expect(body.usage).toEqual({ prompt_tokens: 6, completion_tokens: expected.length, total_tokens: 6 + expected.length });
  });

  it('text prompts and streaming: SSE chunks, usage, [DONE]; the same tokens as the plain answer', async () => {
    const prompt = 'w3 w17 w40 w5 w28 w12 w41';
    const ids = [3, 17, 40, 5, 28, 12, 41];
    const expected = await generate(decoder, ids, 10, []);
    const res = await post('/v1/completions', { prompt, max_tokens: 10, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const ev = await events(res);
    expect(ev.at(-1)).toBe('[DONE]');
    const chunks = ev.slice(0, -1) as { choices: { text: string; token_ids: number[]; finish_reason: string | null }[]; usage?: Record<string, number> }[];
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({ prompt_tokens: 7, completion_tokens: 10, total_tokens: 17 });
    const body = chunks.slice(0, -1);
    expect(body.flatMap((c) => c.choices[0].token_ids)).toEqual(expected);
    expect(body.at(-1)!.choices[0].finish_reason).toBe('length');
    expect(body.map((c) => c.choices[0].text).join('')).toBe(expected.map(word).filter((w) => !w.startsWith('<')).join(' '));
  });

  it('stop strings cut the text and end the stream; stop token ids too', async () => {
    const ids = [3, 17, 40, 5, 28, 12, 41];
    const expected = await generate(decoder, ids, 12, []);
    const words = expected.map(word);
    const k = words.findIndex((w, i) => i > 1 && !w.startsWith('<') && !words.slice(0, i).includes(w));
    if (k > 0) {
      const res = await post('/v1/completions', { prompt: ids, max_tokens: 12, temperature: 0, ignore_eos: true, stop: [words[k]] });
      const body = (await res.json()) as { choices: { text: string; finish_reason: string }[] };
      expect(body.choices[0].finish_reason).toBe('stop');
      expect(body.choices[0].text).toBe(`${words.slice(0, k).filter((w) => !w.startsWith('<')).join(' ')} `);
    }
    const res = await post('/v1/completions', { prompt: ids, max_tokens: 12, temperature: 0, stop: [expected[3]], ignore_eos: true });
    const body = (await res.json()) as { choices: { token_ids: number[]; finish_reason: string }[] };
    expect(body.choices[0].token_ids).toEqual(expected.slice(0, expected.indexOf(expected[3])));
    expect(body.choices[0].finish_reason).toBe('stop');
  });

  it('POST /v1/chat/completions through the chat template, plain and streamed', async () => {
    const messages = [{ role: 'system', content: 'w7 w8' }, { role: 'user', content: [{ type: 'text', text: 'w9 w10' }] }];
    const ids = [7, 8, 9, 10, 5, 6];
    const expected = await generate(decoder, ids, 6, []);
    const res = await post('/v1/chat/completions', { messages, max_tokens: 6, temperature: 0, ignore_eos: true, seed: 3 });
    const body = (await res.json()) as { object: string; choices: { message: { role: string; content: string }; token_ids: number[] }[]; usage: { prompt_tokens: number } };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0].token_ids).toEqual(expected);
    expect(body.choices[0].message.role).toBe('assistant');
    expect(body.usage.prompt_tokens).toBe(6);
    const streamed = await events(await post('/v1/chat/completions', { messages, max_completion_tokens: 6, temperature: 0, ignore_eos: true, stream: true }));
    const chunks = streamed.slice(0, -1) as { object: string; choices: { delta: { role?: string; content?: string }; token_ids?: number[]; finish_reason: string | null }[] }[];
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.flatMap((c) => c.choices[0].token_ids ?? [])).toEqual(expected);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(body.choices[0].message.content);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('length');
  });

  it('malformed requests are 400s that name the field', async () => {
    const cases: [unknown, string | null][] = [
      ['{"prompt": [1, 2', null],
      ['[1, 2]', null],
      [{}, 'prompt'],
      [{ prompt: 'w3', max_tokens: 0 }, 'max_tokens'],
      [{ prompt: 'w3', max_tokens: 1.5 }, 'max_tokens'],
      [{ prompt: 'w3', max_tokens: 'ten' }, 'max_tokens'],
      [{ prompt: [3, 4], max_tokens: 63 }, 'max_tokens'],
      [{ prompt: Array(64).fill(3) }, 'prompt'],
      [{ prompt: [3, 99] }, 'prompt'],
      [{ prompt: [3, -1] }, 'prompt'],
      [{ prompt: 'w3', temperature: 'hot' }, 'temperature'],
      [{ prompt: 'w3', temperature: 3 }, 'temperature'],
      [{ prompt: 'w3', top_p: 0 }, 'top_p'],
      [{ prompt: 'w3', stream: 'yes' }, 'stream'],
      [{ prompt: 'w3', stop: [{}] }, 'stop'],
      [{ prompt: 'w3', n: 2 }, 'n'],
      [{ prompt: 'w3', frequency_penalty: 0.5 }, 'frequency_penalty'],
      [{ prompt: 'w3', seed: 1.5 }, 'seed'],
      [{ prompt: ['w3', 'w4'] }, 'prompt'],
      [{ prompt: 'w3', stream_options: 5 }, 'stream_options'],
    ];
    for (const [body, param] of cases) {
      const res = await post('/v1/completions', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const e = (await res.json()) as { error: { message: string; type: string; param: string | null } };
      expect(e.error.type).toBe('invalid_request_error');
      expect(e.error.param, JSON.stringify(body)).toBe(param);
      expect(e.error.message.length).toBeGreaterThan(5);
    }
    const chat = await post('/v1/chat/completions', { messages: 'hi' });
    expect(chat.status).toBe(400);
    expect(((await chat.json()) as { error: { param: string } }).error.param).toBe('messages');
    // without a tokenizer: token ids work, text is empty, chat is a 400 that says why
    const noText = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }, bareBase);
    expect(noText.status).toBe(400);
    expect(((await noText.json()) as { error: { message: string } }).error.message).toMatch(/tokenizer/);
    const ids = (await (await post('/v1/completions', { prompt: [3, 4, 5], max_tokens: 3, temperature: 0, ignore_eos: true }, bareBase)).json()) as { choices: { text: string; token_ids: number[] }[] };
    expect(ids.choices[0].text).toBe('');
    expect(ids.choices[0].token_ids).toEqual(await generate(plain, [3, 4, 5], 3));
    expect((await post('/v1/completions', { prompt: 'w3' }, bareBase)).status).toBe(400);
  });

  it('429 with Retry-After past --max-waiting', async () => {
    // 2 running at most, 1 waiting: of 12 long requests at once, some are turned away
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => post('/v1/completions', { prompt: [3 + i, 4, 5], max_tokens: 50, temperature: 0, ignore_eos: true })));
    const limited = all.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0].headers.get('retry-after')).toBe('1');
    expect(((await limited[0].json()) as { error: { type: string } }).error.type).toBe('rate_limit_exceeded');
    for (const r of all) if (r.status === 200) expect(((await r.json()) as { choices: { token_ids: number[] }[] }).choices[0].token_ids).toHaveLength(50);
  });

  it('a client that goes away mid-stream frees its blocks within a step', async () => {
    const total = server.batcher.capacity;
    const ac = new AbortController();
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: [3, 9, 27, 11], max_tokens: 58, temperature: 0, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const steps = server.batcher.stats.steps;
    ac.abort();
    expect(await waitFor(() => server.batcher.stats.running === 0)).toBe(true);
    expect(server.batcher.stats.steps - steps).toBeLessThan(58);
    expect(server.batcher.stats.freeBlocks).toBe(total);
  });

  it('GET /metrics: Prometheus text with the gauges, counters and the step histogram', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['qkv_requests_running', 'qkv_requests_waiting', 'qkv_free_blocks', 'qkv_cached_blocks', 'qkv_generated_tokens_total', 'qkv_prompt_tokens_total']) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter)$`, 'm'));
      expect(text).toMatch(new RegExp(`^${name} \\d+$`, 'm'));
    }
    expect(text).toMatch(/^# TYPE qkv_step_seconds histogram$/m);
    const count = Number(/^qkv_step_seconds_count (\d+)$/m.exec(text)![1]);
    expect(count).toBeGreaterThan(0);
    expect(Number(/^qkv_step_seconds_bucket\{le="\+Inf"\} (\d+)$/m.exec(text)![1])).toBe(count);
    expect(Number(/^qkv_free_blocks (\d+)$/m.exec(text)![1])).toBe(64);
  });

  it('shutdown: running streams finish, new requests are refused, the server closes', async () => {
    const d = await loadDecoder(FIXTURE, { engine: reference, maxTokens: 256, kv: { blockSize: 4 } });
    const s = createServer({ decoder: d, modelName: 'x' });
    const at = `http://127.0.0.1:${(await s.listen(0)).port}`;
    const running = post('/v1/completions', { prompt: [3, 4, 5], max_tokens: 40, temperature: 0, ignore_eos: true, stream: true }, at);
    const res = await running;
    const done = s.shutdown(10_000);
    const ev = await events(res);
    expect(ev.at(-1)).toBe('[DONE]');
    expect((ev.slice(0, -1) as { choices: { token_ids: number[] }[] }[]).flatMap((c) => c.choices[0].token_ids)).toHaveLength(40);
    await done;
    await expect(fetch(`${at}/health`)).rejects.toThrow();
    expect(d.freeBlocks).toBe(64);
    d.dispose();
  });
});
