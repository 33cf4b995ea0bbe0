// A case's checklist and documents, kept current from document.added / document.reviewed.
import { onMounted, onUnmounted, ref } from "vue";
import { request } from "@/api/http";
import { live } from "@/api/socket";
import type { CaseDocument, ChecklistLine } from "@/api/types";
import { errorText } from "@/lib/errors";

export function useCaseFiles(ticketId: () => number) {
  const checklist = ref<ChecklistLine[]>([]);
  const documents = ref<CaseDocument[]>([]);
  const error = ref("");
  let pending: Promise<void> | null = null;
  let again = false;

  async function load(): Promise<void> {
    const id = ticketId();
    const [lines, docs] = await Promise.all([
      request("get", "/api/tickets/{ticket_id}/checklist", { path: { ticket_id: id } }),
      request("get", "/api/tickets/{ticket_id}/documents", { path: { ticket_id: id } }),
    ]);
    if (id !== ticketId()) return;
    checklist.value = lines;
    documents.value = docs;
    error.value = "";
  }

  /** Coalesce bursts of events into one reload at a time. */
  function refresh(): Promise<void> {
    if (pending) {
      again = true;
      return pending;
    }
    pending = load()
      .catch((e: unknown) => {
        error.value = errorText(e);
      })
      .finally(() => {
        pending = null;
        if (again) {
          again = false;
          void refresh();
        }
      });
    return pending;
  }

  const offs: (() => void)[] = [];
  const mine = (d: CaseDocument) => {
    if (d.ticket_id === ticketId()) void refresh();
  };
  onMounted(() => {
    void refresh();
    offs.push(live.on("document.added", mine), live.on("document.reviewed", mine), live.onReconnect(() => void refresh()));
  });
  onUnmounted(() => offs.forEach((off) => off()));

  function documentsOf(line: ChecklistLine): CaseDocument[] {
    return documents.value.filter((d) => line.document_ids.includes(d.id));
  }

  return { checklist, documents, error, refresh, documentsOf };
}
