// Precompress the built client (gzip and brotli, best level) next to each file, so the app
// (aiohttp's FileResponse) and nginx (gzip_static) send a village link a third of the bytes
// without compressing on every request. Run after `vite build`.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const dist = new URL("../dist/", import.meta.url).pathname;
const worth = /\.(js|css|html|svg|json|txt|map)$/;
let before = 0;
let after = 0;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (worth.test(name) && statSync(path).size >= 1024) compress(path);
  }
}

function compress(path) {
  const data = readFileSync(path);
  const br = brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
  const gz = gzipSync(data, { level: 9 });
  writeFileSync(`${path}.br`, br);
  writeFileSync(`${path}.gz`, gz);
  before += data.length;
  after += br.length;
}

walk(dist);
console.log(`precompressed: ${(before / 1024).toFixed(0)} KB → ${(after / 1024).toFixed(0)} KB with brotli`);
