/**
 * A real webhook receiver on loopback: records every request with its Standard Webhooks headers,
 * verifies the signature with the `standardwebhooks` package (an independent implementation of
 * the spec), and answers as told: 204, 500 a number of times, or never (the request hangs).
 *
 *   const r = await startWebhookReceiver();
 *   r.secret = created.secret;   // from createWebhook
 *   r.failNext(3);               // three 500s, then 204
 *   await r.waitFor((got) => got.length >= 1);
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  readonly id: string;
  readonly timestamp: string;
  readonly signature: string;
  readonly body: string;
  readonly receivedAt: number;
  /** The signature verified against `secret` at arrival. */
  readonly verified: boolean;
  /** What the receiver answered (null: it let the request hang). */
  readonly answered: number | null;
}

export interface WebhookReceiver {
  readonly url: string;
  secret: string | null;
  readonly received: ReceivedWebhook[];
  /** Answers 500 to the next `n` requests. */
  failNext(n: number): void;
  /** Answers 500 to every request until `healthy()`. */
  failAll(): void;
  /** Lets every request hang (no answer) until `healthy()`. */
  hang(): void;
  healthy(): void;
  /** The requests the receiver answered with 2xx. */
  accepted(): ReceivedWebhook[];
  waitFor(condition: (received: readonly ReceivedWebhook[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function verify(secret: string | null, body: string, headers: Record<string, string>): boolean {
  if (secret === null) return false;
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch {
    return false;
  }
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  let failures = 0;
  let mode: 'ok' | 'fail' | 'hang' = 'ok';
  const hanging = new Set<ServerResponse>();
  const received: ReceivedWebhook[] = [];
  const receiver = { secret: null as string | null };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      let answered: number | null = 204;
      if (mode === 'hang') answered = null;
      else if (mode === 'fail' || failures > 0) {
        failures = Math.max(0, failures - 1);
        answered = 500;
      }
      received.push({
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signature: headers['webhook-signature'],
        body,
        receivedAt: Date.now(),
        verified: verify(receiver.secret, body, headers),
        answered,
      });
      if (answered === null) {
        hanging.add(res);
        return;
      }
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    failNext(n: number) {
      failures = n;
    },
    failAll() {
      mode = 'fail';
    },
    hang() {
      mode = 'hang';
    },
    healthy() {
      mode = 'ok';
      failures = 0;
    },
    accepted: () => received.filter((r) => r.answered !== null && r.answered < 300),
    async waitFor(condition: (got: readonly ReceivedWebhook[]) => boolean, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!condition(received)) {
        if (Date.now() > deadline)
          throw new Error(`webhook receiver: condition not met within ${timeoutMs} ms (${received.length} requests)`);
        await sleep(25);
      }
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
