// Find a service item by its name, code, or pinyin (initials like "gljt" or full pinyin
// like "gaoling"), in the browser: the whole catalogue is a few dozen items, and typing
// should answer at once. pinyin-pro is loaded only when the worker first searches.
import type { Item } from "@/api/types";

type Matcher = (text: string, pinyin: string) => number[] | null;
let matcher: Promise<Matcher> | null = null;

function loadMatcher(): Promise<Matcher> {
  matcher ??= import("pinyin-pro").then((m) => (text: string, query: string) =>
    m.match(text, query, { precision: "start", continuous: true, insensitive: true }),
  );
  return matcher;
}

export async function searchItems(items: Item[], query: string): Promise<Item[]> {
  const q = query.trim().toLowerCase().replace(/\s+/g, "");
  if (!q) return items;
  const ascii = /^[a-z]+$/.test(q);
  const match = ascii ? await loadMatcher() : null;
  const scored: [number, Item][] = [];
  for (const item of items) {
    let score = -1;
    if (item.name.includes(query.trim())) score = 0;
    else if (item.code.toLowerCase().includes(q)) score = 1;
    else if (ascii && item.initials && item.initials.toLowerCase().startsWith(q)) score = 2;
    else if (match && match(item.name, q)) score = 3;
    if (score >= 0) scored.push([score, item]);
  }
  return scored.sort((a, b) => a[0] - b[0]).map(([, item]) => item);
}
