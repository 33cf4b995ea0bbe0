// The worker's device check runs once per browser session before the first resident.
const KEY = "yb.deviceCheck";

export function deviceCheckPassed(): boolean {
  return sessionStorage.getItem(KEY) === "done";
}

export function markDeviceCheckDone(): void {
  sessionStorage.setItem(KEY, "done");
}
