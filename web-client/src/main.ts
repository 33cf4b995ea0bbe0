import { createApp } from "vue";
import "element-plus/theme-chalk/base.css";
import "./styles.css";
import App from "./App.vue";
import { installDebugHook } from "./debug";
import { i18n } from "./i18n";
import { unlockAudioOnFirstGesture } from "./lib/chime";
import { router } from "./router";

installDebugHook();
unlockAudioOnFirstGesture();
createApp(App).use(i18n).use(router).mount("#app");
