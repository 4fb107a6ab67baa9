// An OpenAI-compatible HTTP server of one decoder through a batcher (docs/SERVING.md, "The server").
//
// Node's own `http`, no framework: the package keeps no runtime dependency for it, the routes are five,
// and server-sent events are plain writes on a response (`data: …\n\n`), so a library would add code
// and supply-chain surface without saving any. Every request is checked before it reaches the batcher
// (bad JSON, wrong types, values out of range, a prompt past the context: 400 with OpenAI's
// { error: { message, type, param, code } }); unknown fields are ignored, as OpenAI's API does.
//
//   GET  /health                200 {"status":"ok"} (503 while shutting down)
//   GET  /v1/models             the one model
//   POST /v1/completions        prompt: text, token ids, or a one-element array of either
//   POST /v1/chat/completions   messages through the checkpoint's chat template
//   GET  /metrics               Prometheus text (./metrics.ts)
//
// A client that goes away mid-request aborts its stream: the batcher frees its blocks at once, before
// its next step. Past `maxWaiting` waiting requests, 429 with Retry-After.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Decoder, GenerateOptions } from '../models/types.js';
import { type BatcherOptions, ContinuousBatcher } from './batcher.js';
import { Metrics } from './metrics.js';
import type { ChatMessage, TextCodec } from './text.js';

/** Options of {@link createServer}. */
export interface ServerOptions {
  decoder: Decoder;
  /** The id /v1/models gives (requests may name any model: there is one). */
  modelName: string;
  /** The checkpoint's tokenizer and chat template; null: prompts are token ids, text is empty, chat is a 400. */
  text?: TextCodec | null;
  /** Waiting requests past which new ones get a 429. Default 256. */
  maxWaiting?: number;
  /** Options of the batcher (its onStep is the server's metrics). */
  batcher?: Omit<BatcherOptions, 'onStep'>;
  /** Largest request body in bytes. Default 8 MiB. */
  maxBodyBytes?: number;
}

export interface QkvServer {
  readonly http: Server;
  readonly batcher: ContinuousBatcher;
  readonly metrics: Metrics;
  /** Starts listening (port 0: any free port); resolves with the address. */
  listen(port?: number, host?: string): Promise<{ host: string; port: number }>;
  /** Stops accepting, lets running streams finish for `graceMs` at most (default 10 s), then ends the rest and closes the batcher. */
  shutdown(graceMs?: number): Promise<void>;
}

/** A request error: its HTTP status and OpenAI's error object. */
class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly type = 'invalid_request_error', readonly code: string | null = null) {
    super(message);
  }
}

const bad = (message: string, param: string | null = null) => new ApiError(400, message, param);

type Body = Record<string, unknown>;

/** What a completion or chat request asks for, checked. */
interface Job {
  readonly chat: boolean;
  readonly prompt: number[];
  readonly maxTokens: number;
  readonly options: Omit<GenerateOptions, 'sequence' | 'signal'>;
  readonly stopStrings: string[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

function optionalNumber(body: Body, key: string, check: (v: number) => boolean, range: string, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`'${key}' must be a number, got ${describe(v)}`, key);
  if (integer && !Number.isInteger(v)) throw bad(`'${key}' must be an integer, got ${v}`, key);
  if (!check(v)) throw bad(`'${key}' must be ${range}, got ${v}`, key);
  return v;
}

function optionalBoolean(body: Body, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`'${key}' must be a boolean, got ${describe(v)}`, key);
  return v;
}

const isTokenArray = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'number');

export function createServer(options: ServerOptions): QkvServer {
  const { decoder, modelName, text = null, maxWaiting = 256, maxBodyBytes = 8 << 20 } = options;
  const metrics = new Metrics();
  const batcher = new ContinuousBatcher(decoder, { ...options.batcher, onStep: metrics.step });
  const V = decoder.config.vocabSize;
  const contextLimit = Math.min(decoder.config.maxPositions, batcher.capacity * decoder.blockSize);
  const created = Math.floor(Date.now() / 1000);
  let closing = false, nextId = 0;
  const active = new Set<Promise<void>>();

  function tokenIds(v: unknown, param: string): number[] {
    if (!isTokenArray(v)) throw bad(`'${param}' must be text or a non-empty array of token ids`, param);
    v.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw bad(`'${param}[${i}]' must be a token id in [0, ${V}), got ${t}`, param);
    });
    return v;
  }

  function completionPrompt(body: Body): number[] {
    let p = body.prompt;
    if (p === undefined) throw bad("'prompt' is required", 'prompt');
    if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
    if (typeof p === 'string') {
      if (!text) throw bad('this checkpoint has no tokenizer.json: give the prompt as token ids', 'prompt');
      const ids = text.encode(p);
      if (ids.length === 0) throw bad("'prompt' is empty", 'prompt');
      return ids;
    }
    if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string' || Array.isArray(x))) throw bad('one prompt per request', 'prompt');
    return tokenIds(p, 'prompt');
  }

  function chatPrompt(body: Body): number[] {
    if (!text) throw bad('this checkpoint has no tokenizer.json, so chat requests cannot be rendered: use /v1/completions with token ids', 'messages');
    if (!text.chat) throw bad('this checkpoint has no chat template (chat_template.jinja or tokenizer_config.json chat_template)', 'messages');
    const m = body.messages;
    if (!Array.isArray(m) || m.length === 0) throw bad("'messages' must be a non-empty array of { role, content }", 'messages');
    const messages: ChatMessage[] = m.map((x, i) => {
      if (x === null || typeof x !== 'object') throw bad(`'messages[${i}]' must be an object { role, content }`, 'messages');
      const { role, content } = x as Body;
      if (typeof role !== 'string') throw bad(`'messages[${i}].role' must be a string`, 'messages');
      if (typeof content === 'string') return { role, content };
      // OpenAI's content parts: the text ones, joined
      if (Array.isArray(content) && content.every((c) => c && typeof c === 'object' && (c as Body).type === 'text' && typeof (c as Body).text === 'string')) {
        return { role, content: content.map((c) => (c as { text: string }).text).join('') };
      }
      throw bad(`'messages[${i}].content' must be text or an array of text parts`, 'messages');
    });
    let ids: number[];
    try {
      ids = text.chat(messages);
    } catch (error) {
      throw bad(`the chat template failed: ${(error as Error).message}`, 'messages');
    }
    if (ids.length === 0) throw bad('the rendered conversation is empty', 'messages');
    return ids;
  }

  function parseJob(body: Body, chat: boolean): Job {
    const prompt = chat ? chatPrompt(body) : completionPrompt(body);
    const promptParam = chat ? 'messages' : 'prompt';
    if (prompt.length >= contextLimit) throw bad(`the prompt has ${prompt.length} tokens; the context holds ${contextLimit}, and at least one more is generated`, promptParam);
    const maxKey = chat && body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
    const asked = optionalNumber(body, maxKey, (v) => v >= 1, 'an integer >= 1', true);
    const maxTokens = asked ?? (chat ? contextLimit - prompt.length : Math.min(16, contextLimit - prompt.length));
    if (prompt.length + maxTokens > contextLimit) {
      throw bad(`the prompt's ${prompt.length} tokens and ${maxKey} ${maxTokens} are more than the context's ${contextLimit} positions`, maxKey);
    }
    const n = optionalNumber(body, 'n', (v) => v === 1, '1 (one choice per request)', true);
    void n;
    const bestOf = optionalNumber(body, 'best_of', (v) => v === 1, '1', true);
    void bestOf;
    if (body.echo !== undefined && body.echo !== null && optionalBoolean(body, 'echo')) throw bad("'echo' is not supported", 'echo');
    const lp = body.logprobs;
    if (lp !== undefined && lp !== null && lp !== false && lp !== 0) throw bad("'logprobs' is not supported", 'logprobs');
    for (const key of ['frequency_penalty', 'presence_penalty']) {
      const v = optionalNumber(body, key, (x) => x >= -2 && x <= 2, 'in [-2, 2]');
      if (v !== undefined && v !== 0) throw bad(`'${key}' is not supported (use repetition_penalty)`, key);
    }
    const temperature = optionalNumber(body, 'temperature', (v) => v >= 0 && v <= 2, 'in [0, 2]') ?? 1;
    const topP = optionalNumber(body, 'top_p', (v) => v > 0 && v <= 1, 'in (0, 1]');
    const topK = optionalNumber(body, 'top_k', (v) => v >= -1, '-1 (off), 0 (off) or more', true);
    const minP = optionalNumber(body, 'min_p', (v) => v >= 0 && v <= 1, 'in [0, 1]');
    const repetitionPenalty = optionalNumber(body, 'repetition_penalty', (v) => v > 0 && v <= 10, 'in (0, 10]');
    const seed = optionalNumber(body, 'seed', () => true, 'an integer', true);
    const ignoreEos = optionalBoolean(body, 'ignore_eos') ?? false;
    const stream = optionalBoolean(body, 'stream') ?? false;
    let includeUsage = false;
    const so = body.stream_options;
    if (so !== undefined && so !== null) {
      if (typeof so !== 'object' || Array.isArray(so)) throw bad("'stream_options' must be an object", 'stream_options');
      const iu = (so as Body).include_usage;
      if (iu !== undefined && iu !== null && typeof iu !== 'boolean') throw bad("'stream_options.include_usage' must be a boolean", 'stream_options');
      includeUsage = iu === true;
    }
    // stop: a string, or an array of strings and token ids; stop_token_ids (vLLM's) too
    const stopStrings: string[] = [];
    const stopIds: number[] = [];
    const stop = body.stop;
    if (stop !== undefined && stop !== null) {
      const list = Array.isArray(stop) ? stop : [stop];
      for (const s of list) {
        if (typeof s === 'string') {
          if (s.length > 0) stopStrings.push(s);
        } else if (typeof s === 'number' && Number.isInteger(s) && s >= 0) stopIds.push(s);
        else throw bad("'stop' must be a string or an array of strings and token ids", 'stop');
      }
      if (stopStrings.length > 0 && !text) throw bad('stop strings need a tokenizer.json: give stop token ids', 'stop');
    }
    const sti = body.stop_token_ids;
    if (sti !== undefined && sti !== null) {
      if (!Array.isArray(sti) || !sti.every((t) => typeof t === 'number' && Number.isInteger(t) && t >= 0)) throw bad("'stop_token_ids' must be an array of token ids", 'stop_token_ids');
      stopIds.push(...sti);
    }
    if (!ignoreEos) stopIds.push(...decoder.config.eosTokenIds, ...(text?.stopIds ?? []));
    return {
      chat, prompt, maxTokens, stopStrings, stream, includeUsage,
      options: {
        maxNewTokens: maxTokens, stop: stopIds, temperature, seed,
        topP, minP, repetitionPenalty, topK: topK === undefined || topK <= 0 ? undefined : topK,
      },
    };
  }

  async function readBody(req: IncomingMessage): Promise<Body> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > maxBodyBytes) throw new ApiError(413, `the request body is over ${maxBodyBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (error) {
      throw bad(`the body is not valid JSON: ${(error as Error).message}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object');
    return body as Body;
  }

  const send = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) => {
    metrics.response(status);
    const data = JSON.stringify(value);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers });
    res.end(data);
  };
  const sendError = (res: ServerResponse, e: ApiError, headers?: Record<string, string>) =>
    send(res, e.status, { error: { message: e.message, type: e.type, param: e.param, code: e.code } }, headers);

  /** Runs a checked job: the batcher's stream to SSE chunks or one JSON answer. */
  async function run(job: Job, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (batcher.stats.waiting >= maxWaiting) {
      sendError(res, new ApiError(429, `${batcher.stats.waiting} requests are waiting; try again shortly`, null, 'rate_limit_exceeded', 'too_many_waiting'), { 'Retry-After': '1' });
      return;
    }
    const id = `${job.chat ? 'chatcmpl' : 'cmpl'}-${(nextId++).toString(36)}-${Date.now().toString(36)}`;
    const object = job.chat ? 'chat.completion' : 'text_completion';
    const abort = new AbortController();
    let finished = false;
    // the client went away: its stream ends and its blocks go back now
    res.on('close', () => {
      if (!finished) abort.abort();
    });
    req.on('error', () => abort.abort());
    const tokens = batcher.submit(job.prompt, { ...job.options, signal: abort.signal });
    const ids: number[] = [];
    let sent = 0, stopped = false;
    const hold = job.stopStrings.reduce((m, s) => Math.max(m, s.length - 1), 0);
    /** The text so far, cut at a stop string (which ends the stream). */
    const textNow = (): string => {
      if (!text) return '';
      let t = text.decode(ids);
      for (const s of job.stopStrings) {
        const at = t.indexOf(s, Math.max(0, sent - s.length));
        if (at >= 0) {
          t = t.slice(0, at);
          stopped = true;
        }
      }
      return t;
    };
    const chunk = (delta: string, newIds: number[], finish: string | null) =>
      job.chat
        ? { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: modelName, choices: [{ index: 0, delta: delta ? { content: delta } : {}, token_ids: newIds, logprobs: null, finish_reason: finish }] }
        : { id, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: modelName, choices: [{ index: 0, text: delta, token_ids: newIds, logprobs: null, finish_reason: finish }] };
    const write = (value: unknown) => {
      if (!res.destroyed) res.write(`data: ${JSON.stringify(value)}\n\n`);
    };
    if (job.stream) {
      metrics.response(200);
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      if (job.chat) write({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: modelName, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
    }
    let full = '';
    try {
      let pendingIds: number[] = [];
      for await (const t of tokens) {
        ids.push(t);
        pendingIds.push(t);
        full = textNow();
        if (stopped) break;
        if (job.stream) {
          // text that may still become a stop string, or half a character, waits for the next token
          let end = Math.max(sent, full.length - hold);
          if (full.charCodeAt(end - 1) === 0xfffd) end--;
          write(chunk(full.slice(sent, end), pendingIds, null));
          sent = Math.max(sent, end);
          pendingIds = [];
        }
      }
      if (stopped) await tokens.return();
      if (abort.signal.aborted) return;
      const finish = !stopped && ids.length >= job.maxTokens ? 'length' : 'stop';
      const usage = { prompt_tokens: job.prompt.length, completion_tokens: ids.length, total_tokens: job.prompt.length + ids.length };
      if (job.stream) {
        write(chunk(full.slice(sent), pendingIds, finish));
        if (job.includeUsage) write({ id, object: job.chat ? 'chat.completion.chunk' : 'text_completion', created: Math.floor(Date.now() / 1000), model: modelName, choices: [], usage });
        if (!res.destroyed) res.end('data: [DONE]\n\n');
      } else {
        const choice = job.chat
          ? { index: 0, message: { role: 'assistant', content: full }, token_ids: ids, logprobs: null, finish_reason: finish }
          : { index: 0, text: full, token_ids: ids, logprobs: null, finish_reason: finish };
        send(res, 200, { id, object, created: Math.floor(Date.now() / 1000), model: modelName, choices: [choice], usage });
      }
    } catch (error) {
      // the batcher ended the stream with an error (a forward failed): tell the client if it can still hear
      const message = `generation failed: ${(error as Error).message}`;
      if (job.stream) {
        write({ error: { message, type: 'server_error', param: null, code: null } });
        if (!res.destroyed) res.end('data: [DONE]\n\n');
      } else if (!res.headersSent) sendError(res, new ApiError(500, message, null, 'server_error'));
    } finally {
      finished = true;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = `${req.method} ${path}`;
    try {
      if (path === '/health') {
        if (req.method !== 'GET') throw new ApiError(405, 'use GET', null, 'invalid_request_error');
        send(res, closing ? 503 : 200, { status: closing ? 'shutting down' : 'ok' });
      } else if (path === '/v1/models') {
        if (req.method !== 'GET') throw new ApiError(405, 'use GET', null, 'invalid_request_error');
        send(res, 200, { object: 'list', data: [{ id: modelName, object: 'model', created, owned_by: 'qkv', max_model_len: contextLimit }] });
      } else if (path === '/metrics') {
        if (req.method !== 'GET') throw new ApiError(405, 'use GET', null, 'invalid_request_error');
        const body = metrics.render(batcher.stats);
        metrics.response(200);
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      } else if (path === '/v1/completions' || path === '/v1/chat/completions') {
        if (req.method !== 'POST') throw new ApiError(405, `use POST for ${path}`, null, 'invalid_request_error');
        if (closing) throw new ApiError(503, 'the server is shutting down', null, 'server_error');
        const job = parseJob(await readBody(req), path === '/v1/chat/completions');
        await run(job, req, res);
      } else {
        throw new ApiError(404, `no route ${route}`, null, 'invalid_request_error', 'not_found');
      }
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof ApiError) sendError(res, error);
      else if (error instanceof RangeError || error instanceof TypeError) sendError(res, bad(error.message));
      else sendError(res, new ApiError(500, (error as Error).message ?? String(error), null, 'server_error'));
    }
  }

  const http = createHttpServer((req, res) => {
    const p = handle(req, res).catch(() => {
      res.destroy();
    });
    active.add(p);
    p.finally(() => active.delete(p));
  });

  return {
    http, batcher, metrics,
    listen(port = 8080, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          const a = http.address() as AddressInfo;
          resolve({ host: a.address, port: a.port });
        });
      });
    },
    async shutdown(graceMs = 10_000) {
      closing = true;
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      const drained = (async () => {
        while (active.size > 0) await Promise.race([...active]);
      })();
      await Promise.race([drained, grace]);
      clearTimeout(timer);
      // streams still running past the grace end now (their responses end with what they have)
      await batcher.close();
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 1000))]);
      http.closeAllConnections();
      await closed;
    },
  };
}
