import { ref } from "vue";
import type { Composer } from "vue-i18n";

type T = Composer["t"];

/** The service's time zone (YUNBANG_TIMEZONE), as /api/me and the login answer give it; until
 * then (the login page shows no clock times) the browser's own. */
const serviceZone = ref<string | undefined>(undefined);

export function setServiceZone(zone: string | undefined): void {
  serviceZone.value = zone;
}

/** "约 12 分钟" / "about 12 minutes"; under a minute says so plainly. */
export function minutes(t: T, seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return t("time.underMinute");
  return t("time.minutes", { n: Math.round(seconds / 60) });
}

/** "3 天前" / "2 小时前" / "刚刚": how long before ``now`` (epoch milliseconds) a moment was. */
export function ago(t: T, at: string, now: number): string {
  const seconds = Math.max(0, (now - Date.parse(at)) / 1000);
  if (seconds < 60) return t("time.justNow");
  if (seconds < 3600) return t("time.minutesAgo", { n: Math.floor(seconds / 60) });
  if (seconds < 86_400) return t("time.hoursAgo", { n: Math.floor(seconds / 3600) });
  return t("time.daysAgo", { n: Math.floor(seconds / 86_400) });
}

/** "14:05": a moment (ISO text or epoch milliseconds) as a clock time in the service's zone. */
export function clock(at: string | number | null | undefined): string {
  if (at === null || at === undefined || at === "") return "";
  return new Date(at).toLocaleTimeString("zh-CN", { timeZone: serviceZone.value, hour: "2-digit", minute: "2-digit", hour12: false });
}

/** "2026/11/23 14:05:09": date and time in the service's zone. */
export function dateTime(iso: string): string {
  return new Date(iso).toLocaleString("zh-CN", { timeZone: serviceZone.value, hour12: false });
}

/** "2026-11-23": the service day a moment falls on (a ticket's service_day), in the service's zone. */
export function serviceDay(at: number): string {
  return new Date(at).toLocaleDateString("sv-SE", { timeZone: serviceZone.value });
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
