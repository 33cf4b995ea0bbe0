import { fileURLToPath, URL } from "node:url";
import vue from "@vitejs/plugin-vue";
import ElementPlus from "unplugin-element-plus/vite";
import { defineConfig } from "vite";

// `npm run dev` serves the app on :5173 and proxies the API and socket.io to a running
// `yunbang serve` (YUNBANG_DEV_BACKEND, default http://127.0.0.1:8080).
const backend = process.env.YUNBANG_DEV_BACKEND ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/app/",
  // each Element Plus component brings its own stylesheet into the chunk that uses it: the login
  // page of a cold visit loads a few KB of CSS, not the whole library's 365 KB
  plugins: [vue(), ElementPlus({})],
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  server: {
    proxy: {
      "/api": { target: backend, changeOrigin: false },
      "/socket.io": { target: backend, ws: true },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
});
