// What a resident came to do from a link texted to them (证照到期提醒: renew this item by video or
// by booking), kept in this tab across the phone sign-in, and read once by the take page.
const KEY = "yb.intent";

export type Intent = { item_id: number; mode: "take" | "book" };

export function rememberIntent(intent: Intent): void {
  sessionStorage.setItem(KEY, JSON.stringify(intent));
}

export function takeIntent(): Intent | null {
  const raw = sessionStorage.getItem(KEY);
  sessionStorage.removeItem(KEY);
  if (!raw) return null;
  try {
    const intent = JSON.parse(raw) as Partial<Intent>;
    return typeof intent.item_id === "number" && (intent.mode === "take" || intent.mode === "book")
      ? { item_id: intent.item_id, mode: intent.mode } : null;
  } catch {
    return null;
  }
}
