import { createI18n } from "vue-i18n";
import { setNetworkMessage } from "@/api/http";
import en from "./en";
import zhCN from "./zh-CN";

export type Lang = "zh-CN" | "en";
const KEY = "yb.lang";

function initial(): Lang {
  return localStorage.getItem(KEY) === "en" ? "en" : "zh-CN";
}

export const i18n = createI18n({
  legacy: false,
  locale: initial(),
  fallbackLocale: "zh-CN",
  messages: { "zh-CN": zhCN, en },
});

export function setLang(lang: Lang): void {
  i18n.global.locale.value = lang;
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang;
  document.title = i18n.global.t("app.title");
  setNetworkMessage(i18n.global.t("errors.network"));
}

setLang(initial());
