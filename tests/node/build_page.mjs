// Builds chat_page.jsx into OUT_DIR/chat.js (one browser bundle) and OUT_DIR/index.html.
//   node build_page.mjs OUT_DIR
import { build } from 'esbuild';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const out = process.argv[2];
await build({
  entryPoints: [new URL('./chat_page.jsx', import.meta.url).pathname],
  bundle: true,
  format: 'esm',
  jsx: 'automatic',
  target: 'chrome120',
  define: { 'process.env.NODE_ENV': '"production"' },
  outfile: join(out, 'chat.js'),
  logLevel: 'error',
});
await writeFile(join(out, 'index.html'),
  '<!doctype html><meta charset="utf-8"><title>AI SDK chat</title>' +
  '<div id="root"></div><script type="module" src="chat.js"></script>\n');
