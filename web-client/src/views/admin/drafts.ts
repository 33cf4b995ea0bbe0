// Checklist lines as the catalogue page edits them, and back into what the server takes. A line
// read from the server keeps its `id` (catalog.rewrite_lines keeps the line, and the documents
// filed under it, by that id); a new line, or one copied from another checklist, has none.
import type { Material, Schemas } from "@/api/types";

export interface MaterialDraft {
  key: symbol;
  id: number | null;
  name: string;
  note: string;
  required: boolean;
}

export function drafted(lines: Material[], own: boolean): MaterialDraft[] {
  return lines.map((m) => ({ key: Symbol(m.id), id: own ? m.id : null, name: m.name, note: m.note, required: m.required }));
}

export function materialsBody(lines: MaterialDraft[]): Schemas["MaterialIn"][] {
  return lines
    .filter((m) => m.name.trim())
    .map((m) => ({ ...(m.id !== null ? { id: m.id } : {}), name: m.name.trim(), note: m.note.trim(), required: m.required }));
}

/** "营业执照、食品经营许可证" → each name once, blanks dropped. */
export function namesOf(text: string): string[] {
  return [...new Set(text.split(/[、,，;；\n]/).map((o) => o.trim()).filter(Boolean))];
}
