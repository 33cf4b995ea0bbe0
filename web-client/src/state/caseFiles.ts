// A case's checklist and documents, kept current from document.added / document.reviewed.
import { onMounted, ref } from "vue";
import { request } from "@/api/http";
import type { CaseDocument, ChecklistLine, ListedDocument } from "@/api/types";
import { useLiveEvents } from "@/api/useLiveEvents";
import { errorText } from "@/lib/errors";

export function useCaseFiles(ticketId: () => number) {
  const checklist = ref<ChecklistLine[]>([]);
  const documents = ref<ListedDocument[]>([]);
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

  const events = useLiveEvents();
  const mine = (d: CaseDocument) => {
    if (d.ticket_id === ticketId()) void refresh();
  };
  onMounted(() => {
    void refresh();
    events.on("document.added", mine);
    events.on("document.reviewed", mine);
    // the case's situation chosen or corrected: its checklist is another one
    events.on("ticket.updated", (t) => {
      if (t.id === ticketId()) void refresh();
    });
    events.onReconnect(() => void refresh());
  });

  function documentsOf(line: ChecklistLine): ListedDocument[] {
    return documents.value.filter((d) => line.document_ids.includes(d.id));
  }

  return { checklist, documents, error, refresh, documentsOf };
}
