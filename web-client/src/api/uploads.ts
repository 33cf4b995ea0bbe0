// Resumable uploads (docs/documents.md): begin, PUT chunks from an offset, complete.
// A dropped connection does not lose what was sent: the uploader waits, asks the server
// where it stands (GET /api/uploads/{id}) and continues from there.
import { reactive } from "vue";
import { ApiError, authHeaders, errorFrom, networkError, request } from "./http";
import type { CaseDocument } from "./types";
import { errorText } from "@/lib/errors";

export type UploadPhase = "starting" | "uploading" | "waiting" | "processing" | "done" | "failed";

export interface UploadState {
  phase: UploadPhase;
  sent: number;
  size: number;
  percent: number;
  retries: number;
  error: string;
  document: CaseDocument | null;
}

export interface UploadOptions {
  ticketId: number;
  material: string;
  source?: "upload" | "capture";
  filename?: string;
}

const MAX_WAIT_MS = 5000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** PUT one chunk with XMLHttpRequest: fetch cannot report upload progress. */
function putChunk(uploadId: string, offset: number, chunk: Blob, progress: (loaded: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/api/uploads/${encodeURIComponent(uploadId)}`);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Upload-Offset", String(offset));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.timeout = 120000;
    xhr.upload.onprogress = (event) => progress(event.loaded);
    xhr.onload = () => {
      const response = new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText });
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve((JSON.parse(xhr.responseText) as { offset: number }).offset);
      } else {
        errorFrom(response).then(reject, reject);
      }
    };
    xhr.onerror = () => reject(networkError("upload interrupted"));
    xhr.ontimeout = () => reject(networkError("upload timed out"));
    xhr.onabort = () => reject(networkError("upload aborted"));
    xhr.send(chunk);
  });
}

/** Worth waiting for: the network, a gateway, or another request still working on this upload
 * (say, a PUT whose answer was lost but which the server is still receiving). */
function transient(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 0 || error.status >= 502 || error.code === "upload_busy");
}

/** Upload a file into one checklist line; `state` follows along for the progress bar. */
export function startUpload(file: Blob, options: UploadOptions): { state: UploadState; done: Promise<CaseDocument> } {
  const state = reactive<UploadState>({
    phase: "starting", sent: 0, size: file.size, percent: 0, retries: 0, error: "", document: null,
  });
  const show = (sent: number) => {
    state.sent = Math.min(sent, file.size);
    state.percent = file.size ? Math.floor((state.sent / file.size) * 100) : 100;
  };

  async function patiently<T>(step: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await step();
        return result;
      } catch (error) {
        if (!transient(error)) throw error;
        state.phase = "waiting";
        state.retries += 1;
        await sleep(Math.min(MAX_WAIT_MS, 500 * 2 ** Math.min(attempt, 4)));
      }
    }
  }

  async function run(): Promise<CaseDocument> {
    const begun = await patiently(() =>
      request("post", "/api/tickets/{ticket_id}/uploads", {
        path: { ticket_id: options.ticketId },
        body: { material: options.material, size: file.size, filename: options.filename ?? "", source: options.source ?? "upload" },
      }),
    );
    const uploadId = begun.upload_id;
    const chunkBytes = Math.max(64 * 1024, begun.chunk_bytes);
    let offset = begun.offset;
    for (;;) {
      while (offset < file.size) {
        state.phase = "uploading";
        const from = offset;
        try {
          offset = await putChunk(uploadId, from, file.slice(from, from + chunkBytes), (loaded) => show(from + loaded));
          show(offset);
        } catch (error) {
          if (error instanceof ApiError && error.code === "offset_mismatch" && typeof error.detail.offset === "number") {
            offset = error.detail.offset;
            continue;
          }
          if (!transient(error)) throw error;
          state.phase = "waiting";
          state.retries += 1;
          await sleep(1000);
          // Where does the server stand? Continue from there, not from what we hoped.
          offset = (await patiently(() => request("get", "/api/uploads/{upload_id}", { path: { upload_id: uploadId } }))).offset;
          show(offset);
        }
      }
      state.phase = "processing";
      try {
        return await patiently(() => request("post", "/api/uploads/{upload_id}/complete", { path: { upload_id: uploadId } }));
      } catch (error) {
        if (error instanceof ApiError && error.code === "upload_incomplete" && typeof error.detail.offset === "number") {
          offset = error.detail.offset;
          continue;
        }
        throw error;
      }
    }
  }

  const done = run().then(
    (document) => {
      show(file.size);
      state.phase = "done";
      state.document = document;
      return document;
    },
    (error: unknown) => {
      state.phase = "failed";
      state.error = errorText(error);
      throw error;
    },
  );
  return { state, done };
}
