// S5's fastest peer: a Claude relay on Node's own `http` server and Anthropic's TypeScript
// SDK (`@anthropic-ai/sdk`, pinned in bench/peers/node/package.json and installed by
// `python -m bench.node_sdk` into .cache/node). It relays `GET /api/sse?message=` with
// `messages.create({stream: true})`, the SDK's raw event stream (no message snapshot), and
// writes sseserver's frames: `retry`, then `meta`, one `message` per text delta, `usage`,
// `done`, every event with the id `<stream>:<index>` (bench/peers/__init__.py).
//
// Usage: node bench/peers/node_relay.mjs --port N [--host H] [--demo-delay-ms D]
// [--demo-tokens T] (port 0: one the kernel picks; the demo options are accepted, as every
// peer's are, and unused: the reply comes from the API at ANTHROPIC_BASE_URL, with
// ANTHROPIC_API_KEY).

import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

// The SDK lives in the bench's cache folder, not beside this script.
const cache = new URL("../../.cache/node/package.json", import.meta.url);
const Anthropic = createRequire(cache)("@anthropic-ai/sdk").default;

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    "demo-delay-ms": { type: "string" },
    "demo-tokens": { type: "string" },
  },
});

const MODEL = "claude-sonnet-5-5";
const client = new Anthropic();

// sseserver's JSON is compact with non-ASCII kept as UTF-8, as JSON.stringify writes it.
const frame = (streamId, index, event, data) =>
  `id: ${streamId}:${index}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

async function relay(request, response) {
  const url = new URL(request.url, "http://peer");
  if (request.method !== "GET" || url.pathname !== "/api/sse") {
    response.writeHead(404, { "Content-Type": "application/json" });
    response.end('{"error":{"type":"not_found","message":"Not found."}}');
    return;
  }
  response.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
  });
  const streamId = randomBytes(12).toString("base64url");
  const meta = { stream: streamId, model: MODEL, provider: "anthropic" };
  response.write("retry: 3000\n\n" + frame(streamId, 0, "meta", meta));
  const upstream = await client.messages.create({
    model: MODEL,
    max_tokens: 1024,
    messages: [{ role: "user", content: url.searchParams.get("message") ?? "" }],
    stream: true,
  });
  // A client that leaves closes the upstream request, as every relay must.
  response.on("close", () => upstream.controller.abort());
  let index = 1;
  let inputTokens = 0;
  let outputTokens = 0;
  let stopReason = null;
  for await (const event of upstream) {
    if (event.type === "content_block_delta") {
      if (event.delta.type === "text_delta") {
        response.write(frame(streamId, index++, "message", event.delta.text));
      }
    } else if (event.type === "message_start") {
      inputTokens = event.message.usage.input_tokens;
    } else if (event.type === "message_delta") {
      outputTokens = event.usage.output_tokens;
      stopReason = event.delta.stop_reason;
    }
  }
  const usage = { input_tokens: inputTokens, output_tokens: outputTokens, stop_reason: stopReason };
  response.write(frame(streamId, index, "usage", usage));
  response.end(frame(streamId, index + 1, "done", "[DONE]"));
}

const server = createServer((request, response) => {
  relay(request, response).catch((error) => {
    // The loadgen counts a stream without `done` as failed; the log says why.
    if (!response.destroyed) console.error("relay failed:", error?.message ?? error);
    response.destroy();
  });
});
// With --port 0 the kernel picks the port: the URL line (as sseserver prints it) tells the
// bench and the tests which.
server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
