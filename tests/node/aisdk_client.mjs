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
//   tools      send TEXT; the app runs its client tools in onToolCall (addToolOutput, not
//              awaited, as the SDK's docs say) and useChat sends the outputs back by
//              itself (sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls)
//   approve, deny
//              send TEXT, then answer the approval asked for (addToolApprovalResponse,
//              denied with a reason for deny); useChat sends the decision by itself
//              (lastAssistantMessageIsCompleteWithApprovalResponses)
//   twice      send TEXT, wait for the reply, then send SECOND_TEXT in the same chat: the
//              second request posts the first reply as useChat keeps it (its metadata
//              and data parts included)
// Every scenario ends with the reconnect route's status (the SDK's GET), read once more,
// and reports the body of each POST the transport made. With AISDK_FILES naming a JSON
// file of FileUIParts ({type: 'file', mediaType, url, filename}), the message is sent
// with them, as useChat sends an attached file.
//
// With AISDK_BEARER in the environment (a user's token), the transport sends it with its
// `headers` option, which its reconnect sends too, and Stop's DELETE adds it itself.

import { Chat } from '@ai-sdk/react';
import {
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  lastAssistantMessageIsCompleteWithToolCalls,
} from 'ai';
import { readFileSync } from 'node:fs';

const [scenario, base, text = 'Hello', body] = process.argv.slice(2);
const api = `${base}/api/chat`;
const bearer = process.env.AISDK_BEARER;
const headers = bearer ? { Authorization: `Bearer ${bearer}` } : undefined;
const CUT_AFTER_DELTAS = 3;
const STOP_AFTER_CHARS = 8;
// What the app's client tools answer.
const CLIENT_OUTPUTS = { locate: { locale: 'fr-FR', timeZone: 'Europe/Paris' } };
const SECOND_TEXT = 'And then?';
const files = process.env.AISDK_FILES
  ? JSON.parse(readFileSync(process.env.AISDK_FILES, 'utf8'))
  : undefined;

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

// Records the body of each POST, then fetches as `inner` (or the global fetch) would.
function recordingFetch(sent, inner = fetch) {
  return async (url, init) => {
    if (init?.method === 'POST') sent.push(JSON.parse(init.body));
    return inner(url, init);
  };
}

const AUTOMATIC = {
  tools: lastAssistantMessageIsCompleteWithToolCalls,
  approve: lastAssistantMessageIsCompleteWithApprovalResponses,
  deny: lastAssistantMessageIsCompleteWithApprovalResponses,
};

async function main() {
  const cut = { cut: false };
  const finishes = [];
  const errors = [];
  const sent = [];
  const toolCalls = [];
  const chat = new Chat({
    id: `chat-${scenario}-${process.pid}`,
    transport: new DefaultChatTransport({
      api,
      headers,
      body: body ? JSON.parse(body) : undefined,
      fetch: recordingFetch(
        sent, scenario === 'reconnect' || scenario === 'late' ? cuttingFetch(cut) : fetch),
    }),
    onFinish: ({ message, isAbort, isDisconnect, isError, finishReason }) =>
      finishes.push({ id: message.id, isAbort, isDisconnect, isError, finishReason }),
    onError: error => errors.push(error.message),
    onToolCall: ({ toolCall }) => {
      toolCalls.push(toolCall);
      const output = CLIENT_OUTPUTS[toolCall.toolName];
      if (output !== undefined) {
        void chat.addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId,
                                  output });
      }
    },
    sendAutomaticallyWhen: AUTOMATIC[scenario],
  });
  const result = { scenario };

  if (scenario === 'stop') {
    const sending = chat.sendMessage({ text, files });
    await until(() => assistantText(chat).length >= STOP_AFTER_CHARS, 'some text');
    // The README's Stop: the DELETE cancels the reply upstream, stop() ends the reading.
    result.stoppedAtNs = process.hrtime.bigint().toString();
    const [deleted] = await Promise.all([
      fetch(`${api}/${encodeURIComponent(chat.id)}/stream`, { method: 'DELETE', headers }),
      chat.stop(),
    ]);
    result.deleteStatus = deleted.status;
    await sending;
  } else if (scenario === 'approve' || scenario === 'deny') {
    await chat.sendMessage({ text });
    const asking = chat.messages.at(-1).parts.find(p => p.state === 'approval-requested');
    result.asked = structuredClone(asking);
    await chat.addToolApprovalResponse({
      id: asking.approval.id,
      approved: scenario === 'approve',
      reason: scenario === 'deny' ? 'not today' : undefined,
    });
    await until(() => chat.status === 'ready' && finishes.length === 2,
                'the reply to the decision');
  } else if (scenario === 'twice') {
    await chat.sendMessage({ text });
    result.first = structuredClone(chat.messages);
    await chat.sendMessage({ text: SECOND_TEXT });
  } else {
    await chat.sendMessage({ text, files });
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
  result.sent = sent;
  result.toolCalls = toolCalls;
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
