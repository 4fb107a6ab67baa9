// The token ids of the GGUF files that bench/lib/gguf.js writes, between text and ids, in Node and in
// the bench page alike (no Node module here). Ids 0-127 are GPT-2's byte-level characters of the ASCII
// bytes (byte b is token b), the rest `<id>`; with no merges, llama.cpp tokenizes a text of ASCII
// characters to one token per byte, its value.

/** GPT-2's bytes_to_unicode: the character each byte is written as in a byte-level BPE vocabulary. */
export function byteCharacters() {
  const printable = [];
  for (const [a, b] of [[33, 126], [161, 172], [174, 255]]) for (let c = a; c <= b; c++) printable.push(c);
  const out = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return out;
}

/**
 * The bench's prompt: `n` token ids between 33 and 126, printable ASCII bytes, which the GGUF's tokenizer
 * maps one to one to and from text (see the top of this file); the same ids for every engine.
 */
export function promptTokens(n) {
  return Array.from({ length: n }, (_, i) => 33 + ((i * 7919 + 13) % 94));
}

/** The text that llama.cpp tokenizes to promptTokens' ids: one ASCII character each. */
export const promptText = (ids) => String.fromCharCode(...ids);

/**
 * Token ids back from text llama.cpp generated with this vocabulary: `<id>`, or one ASCII character
 * (byte b: token b); stops at anything else (a byte above 127 may be half a character, a control token prints
 * nothing), so the result may be a prefix.
 */
export function readTokens(text) {
  const ids = [];
  for (let i = 0; i < text.length;) {
    const m = /^<(\d+)>/.exec(text.slice(i, i + 12));
    if (m) { ids.push(Number(m[1])); i += m[0].length; continue; }
    const c = text.charCodeAt(i);
    if (c > 127) break;
    ids.push(c);
    i++;
  }
  return ids;
}
