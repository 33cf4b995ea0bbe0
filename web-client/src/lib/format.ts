import type { Composer } from "vue-i18n";

type T = Composer["t"];

/** "约 12 分钟" / "about 12 minutes"; under a minute says so plainly. */
export function minutes(t: T, seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return t("time.underMinute");
  return t("time.minutes", { n: Math.round(seconds / 60) });
}

/** A clock time in the service centre's zone (the demo district is in China). */
export function clock(iso: string | null | undefined, zone = "Asia/Shanghai"): string {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString("zh-CN", { timeZone: zone, hour: "2-digit", minute: "2-digit", hour12: false });
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
