// A small Express service whose every request is a Context, published to RabbitMQ. Start it, watch
// it, and call it:
//
//   npm run example:express                       # listens on 127.0.0.1:3000 (PORT picks another)
//   npx lcmon -r 'http.#' -c                      # in another terminal: one object per request
//   curl localhost:3000/users/42
//   curl -X POST -H 'content-type: application/json' -d '{"sku":"socks","qty":2}' localhost:3000/orders
//   curl localhost:3000/boom                      # error: { name, message }, status_code 500
//   curl -N localhost:3000/stream                 # finished once the last chunk is sent
//
// CONTEXTURE_URL, CONTEXTURE_EXCHANGE and the other CONTEXTURE_* variables configure the handler.
import express from 'express';
import { Context, configure } from '@contexture/context';
import { contexture } from '@contexture/context/express';

const handler = configure();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Stands for a database call: it sets fields of the request's context from deep down. */
async function findUser(id) {
  await sleep(5 + Math.random() * 20);
  Context.current().db_ms = Math.round(Math.random() * 300) / 100;
  return { id, name: `user ${id}` };
}

const app = express();
app.use(contexture({ ignore: ['/healthz'], headers: ['user-agent', 'x-request-id'] }));
app.use(express.json());

app.get('/healthz', (_req, res) => {
  res.send('ok');
});
app.get('/users/:id', async (req, res) => {
  const user = await findUser(req.params.id);
  Context.current().user = user.id;
  res.json(user);
});
app.post('/orders', (req, res) => {
  const ctx = Context.current();
  ctx.update({ sku: req.body?.sku, qty: req.body?.qty });
  ctx.log.info('order of {qty} {sku}');
  res.status(201).json({ ok: true });
});
app.get('/boom', async () => {
  await sleep(5);
  throw new RangeError('the boom route always fails');
});
app.get('/stream', async (_req, res) => {
  for (let i = 1; i <= 5; i++) {
    res.write(`chunk ${i}\n`);
    Context.current().chunks = i;
    await sleep(200);
  }
  res.end();
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`express example listening on http://127.0.0.1:${server.address().port}`);
  console.log(`watch it: npx lcmon -e ${handler.options.exchange} -r 'http.#' -c`);
});

// Ctrl-C: stop taking requests and cut the connections; once the server has closed, every request
// still open then has been finished (aborted: true), and closing the handler publishes them all.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close(async () => {
      await handler.close();
      process.exit(0);
    });
    server.closeAllConnections();
  });
}
