/** Record body the crash test writes for `label`: the label, padded by a size derived from it. */
export function crashRecord(label: string): Uint8Array {
  const text = new TextEncoder().encode(label);
  let h = 0;
  for (const b of text) h = (h * 31 + b) >>> 0;
  const out = new Uint8Array(2 + text.length + (h % 700));
  out[0] = text.length;
  out.set(text, 2);
  for (let i = 2 + text.length; i < out.length; i++) out[i] = (h + i) & 0xff;
  return out;
}
