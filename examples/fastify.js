// A small Fastify service whose every request is a Context, published to RabbitMQ. Start it, watch
// it, and call it:
//
//   npm run example:fastify                       # listens on 127.0.0.1:3000 (PORT picks another)
//   npx lcmon -r 'http.#' -c                      # in another terminal: one object per request
//   curl localhost:3000/users/42
//   curl -X POST -H 'content-type: application/json' -d '{"sku":"socks","qty":2}' localhost:3000/orders
//   curl localhost:3000/boom                      # error: { name, message }, status_code 500
//   curl -N localhost:3000/stream                 # finished once the last chunk is sent
//
// CONTEXTURE_URL, CONTEXTURE_EXCHANGE and the other CONTEXTURE_* variables configure the handler.
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { Context, configure } from '@contexture/context';
import contexturePlugin from '@contexture/context/fastify';

const handler = configure();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Stands for a database call: it sets fields of the request's context from deep down. */
async function findUser(id) {
  await sleep(5 + Math.random() * 20);
  Context.current().db_ms = Math.round(Math.random() * 300) / 100;
  return { id, name: `user ${id}` };
}

const app = Fastify({ forceCloseConnections: true });
await app.register(contexturePlugin, { ignore: ['/healthz'], headers: ['user-agent', 'x-request-id'] });

app.get('/healthz', async () => 'ok');
app.get('/users/:id', async (req) => {
  const user = await findUser(req.params.id);
  Context.current().user = user.id;
  return user;
});
app.post('/orders', async (req, reply) => {
  const ctx = Context.current();
  ctx.update({ sku: req.body?.sku, qty: req.body?.qty });
  ctx.log.info('order of {qty} {sku}');
  return reply.code(201).send({ ok: true });
});
app.get('/boom', async () => {
  await sleep(5);
  throw new RangeError('the boom route always fails');
});
app.get('/stream', async (_req, reply) => {
  const ctx = Context.current();
  async function* chunks() {
    for (let i = 1; i <= 5; i++) {
      ctx.chunks = i;
      yield `chunk ${i}\n`;
      await sleep(200);
    }
  }
  return reply.type('text/plain').send(Readable.from(chunks()));
});

const port = Number(process.env.PORT ?? 3000);
const address = await app.listen({ port, host: '127.0.0.1' });
console.log(`fastify example listening on ${address}`);
console.log(`watch it: npx lcmon -e ${handler.options.exchange} -r 'http.#' -c`);

// Ctrl-C: stop taking requests and cut the connections (forceCloseConnections); once app.close()
// resolves, every request still open then has been finished (aborted: true), and closing the
// handler publishes them all.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await app.close();
    await handler.close();
    process.exit(0);
  });
}
