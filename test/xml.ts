// Shared by the tests of the SVG writers: src/heatmap.ts (test/ops/attentionHeatmap.test.ts) and the
// serve-load chart (test/bench/chart.test.ts).

/**
 * A small well-formedness check (Node has no XML parser): tags nest and close, attribute values
 * are quoted, and text and attributes hold no raw '<' and no '&' that does not start an entity.
 * Returns the elements in document order with their attributes and direct text.
 */
export function parseXml(xml: string): { name: string; attrs: Record<string, string>; text: string }[] {
  const elements: { name: string; attrs: Record<string, string>; text: string }[] = [];
  const stack: { name: string; attrs: Record<string, string>; text: string }[] = [];
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi;
  const checkText = (text: string): void => {
    if (/</.test(text) || /&/.test(text.replace(entity, ''))) throw new Error(`unescaped text: ${text}`);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: it looks for control characters
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) throw new Error(`control character in ${JSON.stringify(text)}`);
  };
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    checkText(text);
    if (stack.length) stack[stack.length - 1].text += text;
    else if (text.trim()) throw new Error(`text outside the root: ${text}`);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 60)}`);
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open?.name !== name) throw new Error(`</${name}> closes <${open?.name}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const [, k, v] of attrText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
        checkText(v);
        if (k in attrs) throw new Error(`duplicate attribute ${k}`);
        attrs[k] = v;
      }
      const el = { name, attrs, text: '' };
      if (stack.length === 0 && elements.length > 0) throw new Error('a second root element');
      elements.push(el);
      if (!selfClose) stack.push(el);
    }
    i = tag.lastIndex;
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  return elements;
}
