// The tour's tiny model (examples/model/, made by scripts/fixtures/make-tour-model.py): qkv's greedy
// tokens on both engines equal transformers' (float32, from the float16 weights as stored), and the
// checkpoint's tokenizer.json gives the same ids in JavaScript as it did in Python.
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Decoder, type Engine, loadDecoder, reference } from '../../src/index.js';

const MODEL = new URL('../../examples/model/', import.meta.url);
interface Case { prompt: string; ids: number[]; greedy: number[]; text: string }
const { cases } = JSON.parse(readFileSync(new URL('expected.json', MODEL), 'utf8')) as { cases: Case[] };
const readJson = (file: string) => JSON.parse(readFileSync(new URL(file, MODEL), 'utf8'));

async function greedy(decoder: Decoder, prompt: number[], n: number): Promise<number[]> {
  const out: number[] = [];
  for await (const t of decoder.generate(prompt, { maxNewTokens: n, stop: [] })) out.push(t);
  return out;
}

/** Where `got` first leaves `want`, with the logits there (teacher-forced over prompt + want). */
function firstDifference(decoder: Decoder, c: Case, got: number[]): string {
  const at = got.findIndex((t, i) => t !== c.greedy[i]);
  const tokens = [...c.ids, ...c.greedy.slice(0, at)];
  const seq = decoder.sequence();
  const logits = decoder.forward(tokens, { sequences: [seq], queryLens: [tokens.length], logits: 'last' });
  seq.free();
  const row = Array.from(logits.data);
  const sorted = [...row].sort((a, b) => b - a);
  return `${c.prompt}: first difference at new token ${at}: qkv ${got[at]}, transformers ${c.greedy[at]}; ` +
    `qkv logits there: [${got[at]}] ${row[got[at]]}, [${c.greedy[at]}] ${row[c.greedy[at]]}, top-2 margin ${sorted[0] - sorted[1]}`;
}

const made: Engine[] = [];
afterAll(() => made.forEach((e) => e.dispose()));

describe('the tour model', () => {
  it('tokenizer.json encodes and decodes in JavaScript as in Python', () => {
    const tokenizer = new Tokenizer(readJson('tokenizer.json'), readJson('tokenizer_config.json'));
    for (const c of cases) {
      expect(tokenizer.encode(c.prompt).ids).toEqual(c.ids);
      expect(tokenizer.decode(c.greedy)).toBe(c.text);
    }
  });

  it.each([
    ['reference', async () => reference],
    ['wasm', async () => { const e = await createEngine(); made.push(e); return e; }],
  ] as [string, () => Promise<Engine>][])('greedy tokens equal transformers\' on %s', async (_label, make) => {
    const decoder = await loadDecoder(MODEL.pathname, { engine: await make(), maxTokens: 512 });
    try {
      for (const c of cases) {
        const got = await greedy(decoder, c.ids, c.greedy.length);
        if (got.join() !== c.greedy.join()) throw new Error(firstDifference(decoder, c, got));
        expect(got).toEqual(c.greedy);
      }
    } finally {
      decoder.dispose();
    }
  });
});
