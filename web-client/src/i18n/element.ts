// Element Plus's own texts (pagination, dialogs, date pickers) in the page's language: only the
// signed-in frame (AppShell.vue) uses them, so they stay out of the login page's first load.
import { computed } from "vue";
import elementEn from "element-plus/es/locale/lang/en";
import elementZh from "element-plus/es/locale/lang/zh-cn";
import { i18n } from "./index";

export const elementLocale = computed(() => (i18n.global.locale.value === "en" ? elementEn : elementZh));
