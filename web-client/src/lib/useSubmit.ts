import { ref } from "vue";
import { errorText } from "./errors";

/**
 * A form's one action (a dialog's 确定, the rating's 提交): `busy` while it runs, so its button
 * spins and is not pressed twice; `error`, the server's words when it failed, cleared when it
 * runs again. `run` resolves true when the work went through.
 */
export function useSubmit() {
  const busy = ref(false);
  const error = ref("");

  async function run(work: () => Promise<unknown>): Promise<boolean> {
    busy.value = true;
    error.value = "";
    try {
      await work();
      return true;
    } catch (e) {
      error.value = errorText(e);
      return false;
    } finally {
      busy.value = false;
    }
  }

  return { busy, error, run };
}
