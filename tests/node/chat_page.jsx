// A minimal Next.js-style chat page on the AI SDK (useChat with resume, DefaultChatTransport,
// and the README's Stop), for tests/test_aisdk_browser.py. It is a test fixture, built with
// esbuild by the test, never part of the product. Messages are kept in sessionStorage, as
// an app keeps them in its own storage, so a reload shows the chat and resumes its reply.
// It answers the client tool `locate` with the browser's language (onToolCall, then
// addToolOutput), and useChat sends the output back by itself.
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithToolCalls } from 'ai';
import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

const api = `${new URLSearchParams(location.search).get('server')}/api/chat`;
const chatId = sessionStorage.getItem('chat') ?? `page-${crypto.randomUUID()}`;
sessionStorage.setItem('chat', chatId);
const saved = JSON.parse(sessionStorage.getItem('messages') ?? '[]');

function Chat() {
  const { messages, sendMessage, status, stop, error, addToolOutput } = useChat({
    id: chatId,
    messages: saved,
    resume: true,
    transport: new DefaultChatTransport({ api }),
    onToolCall: ({ toolCall }) => {
      if (toolCall.toolName === 'locate') {
        void addToolOutput({ tool: 'locate', toolCallId: toolCall.toolCallId,
                             output: { locale: navigator.language } });
      }
    },
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
  });
  const [input, setInput] = useState('');
  useEffect(() => sessionStorage.setItem('messages', JSON.stringify(messages)), [messages]);
  const stopReply = () => {
    void fetch(`${api}/${encodeURIComponent(chatId)}/stream`, { method: 'DELETE' });
    void stop();
  };
  return (
    <main>
      <p id="status">{status}</p>
      {error && <p id="error">{error.message}</p>}
      <ol id="messages">
        {messages.map(message => (
          <li key={message.id} data-role={message.role} data-id={message.id}
              data-parts={message.parts.map(part => part.type).join(' ')}>
            <span className="text">
              {message.parts.filter(part => part.type === 'text').map(part => part.text).join('')}
            </span>
            {message.parts.filter(part => part.type.startsWith('tool-')).map(part => (
              <pre key={part.toolCallId} className="tool" data-state={part.state}>
                {JSON.stringify(part.input ?? null)}
              </pre>
            ))}
          </li>
        ))}
      </ol>
      <form onSubmit={event => { event.preventDefault(); sendMessage({ text: input }); setInput(''); }}>
        <input id="prompt" value={input} onChange={event => setInput(event.target.value)} />
        <button id="send">Send</button>
        <button id="stop" type="button" onClick={stopReply}>Stop</button>
      </form>
    </main>
  );
}

createRoot(document.getElementById('root')).render(<Chat />);
