// Drives the AI SDK's own Chat (@ai-sdk/react's, the class useChat uses) and its
// DefaultChatTransport against a running sseserver, as a Next.js page would, and prints
// what the SDK made of it as one JSON line. tests/test_aisdk_functional.py runs it.
//
//   node aisdk_client.mjs SCENARIO BASE_URL [TEXT [BODY]]
//
// BODY: JSON the transport adds to each request's body (its `body` option), e.g. our
// request options {"thinking": 2048, "web_search": "on"}.
//
// Scenarios:
//   reply      send TEXT, wait for the reply to end
//   reconnect  send TEXT, cut the connection after a few deltas (a network error,
//              as the browser reports one), then the transport's reconnect (resumeStream)
//   late       the same, but reconnect only when told on stdin (the test waits for the
//              reply to end on the server first): a resume that comes after the end
//   stop       send TEXT, then Stop as the README wires it: DELETE on the chat's stream
//              and chat.stop(), once some text has arrived
// Every scenario ends with the reconnect route's status (the SDK's GET), read once more.
//
// With AISDK_BEARER in the environment (a user's token), the transport sends it with its
// `headers` option, which its reconnect sends too, and Stop's DELETE adds it itself.

import { Chat } from '@ai-sdk/react';
import { DefaultChatTransport } from 'ai';

const [scenario, base, text = 'Hello', body] = process.argv.slice(2);
const api = `${base}/api/chat`;
const bearer = process.env.AISDK_BEARER;
const headers = bearer ? { Authorization: `Bearer ${bearer}` } : undefined;
const CUT_AFTER_DELTAS = 3;
const STOP_AFTER_CHARS = 8;

// The connection is cut as a network would: the socket is closed (the server sees the
// client go) and the response body fails with the TypeError browsers give.
function cuttingFetch(state) {
  return async (url, init) => {
    if (state.cut || init?.method !== 'POST') return fetch(url, init);
    const socket = new AbortController();
    init.signal?.addEventListener('abort', () => socket.abort(init.signal.reason));
    const response = await fetch(url, { ...init, signal: socket.signal });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let deltas = 0;
    const body = new ReadableStream({
      async pull(out) {
        // Cut at the read after the one that brought the deltas, once the SDK has taken
        // those (a pull comes when what was enqueued has been read).
        if (deltas >= CUT_AFTER_DELTAS) {
          state.cut = true;
          socket.abort();
          return out.error(new TypeError('network error'));
        }
        const { done, value } = await reader.read();
        if (done) return out.close();
        deltas += decoder.decode(value, { stream: true }).split('-delta"').length - 1;
        out.enqueue(value);
      },
      cancel(reason) {
        socket.abort(reason);
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
}

function assistantText(chat) {
  const last = chat.messages.at(-1);
  if (last?.role !== 'assistant') return '';
  return last.parts.filter(p => p.type === 'text').map(p => p.text).join('');
}

function nextLine() {
  return new Promise(resolve => process.stdin.once('data', resolve));
}

async function until(predicate, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 2));
  }
}

async function main() {
  const cut = { cut: false };
  const finishes = [];
  const errors = [];
  const chat = new Chat({
    id: `chat-${scenario}-${process.pid}`,
    transport: new DefaultChatTransport({
      api,
      headers,
      body: body ? JSON.parse(body) : undefined,
      fetch: scenario === 'reconnect' || scenario === 'late' ? cuttingFetch(cut) : undefined,
    }),
    onFinish: ({ message, isAbort, isDisconnect, isError, finishReason }) =>
      finishes.push({ id: message.id, isAbort, isDisconnect, isError, finishReason }),
    onError: error => errors.push(error.message),
  });
  const result = { scenario };

  if (scenario === 'stop') {
    const sent = chat.sendMessage({ text });
    await until(() => assistantText(chat).length >= STOP_AFTER_CHARS, 'some text');
    // The README's Stop: the DELETE cancels the reply upstream, stop() ends the reading.
    result.stoppedAtNs = process.hrtime.bigint().toString();
    const [deleted] = await Promise.all([
      fetch(`${api}/${encodeURIComponent(chat.id)}/stream`, { method: 'DELETE', headers }),
      chat.stop(),
    ]);
    result.deleteStatus = deleted.status;
    await sent;
  } else {
    await chat.sendMessage({ text });
    if (scenario === 'reconnect' || scenario === 'late') {
      result.afterCut = { status: chat.status, text: assistantText(chat),
                          messageId: chat.messages.at(-1)?.id };
      if (scenario === 'late') {
        console.log(JSON.stringify(result.afterCut));
        await nextLine();
      }
      await chat.resumeStream();
    }
  }
  result.status = chat.status;
  result.messages = chat.messages;
  result.finishes = finishes;
  result.errors = errors;
  // The transport's reconnect once more, as a page that loads with `resume` would.
  const again = await fetch(`${api}/${encodeURIComponent(chat.id)}/stream`, { headers });
  result.resumeAfterEnd = again.status;
  await chat.resumeStream();
  result.messagesAfterResume = chat.messages.length;
  console.log(JSON.stringify(result));
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
