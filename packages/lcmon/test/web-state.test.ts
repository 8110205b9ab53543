import http from 'node:http';
import { expect } from 'chai';
import type { BusMessage } from '@contexture/context/protocol';
import { LiveState } from '../src/web/live-state.js';
import { WebServer } from '../src/web/web-server.js';
import { parseListenAddress } from '@contexture/context/internal';

const META = { rkey: 'web.handle', headers: { hostname: 'box-1' } };

function msg(id: string, seq: number, obj: Record<string, unknown>, extra: Record<string, unknown> = {}): BusMessage {
  return { obj_id: id, obj, seq, time_in: 1_700_000_000 + seq, ...extra } as BusMessage;
}

describe('lcmon --web: the live state', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('keeps an open object with its current fields, the last change and its history, and lets it go after the fade', () => {
    const s = new LiveState({ now: clock, fadeMs: 2000 });
    s.add(msg('a', 0, { url: '/a', n: 0 }, { status: 'born' }), META);
    s.add(msg('a', 1, { n: 1 }), META);
    s.add(msg('a', 2, { url: null }, { action: 'delete' }), META);
    const { changed } = s.takeDirty();
    expect(changed).to.have.length(1);
    expect(changed[0]).to.include({ id: 'a', rkey: 'web.handle', status: 'open', messages: 3, coalesced: 2 });
    expect(changed[0]!.fields).to.deep.equal({ n: 1 });
    expect(changed[0]!.changed).to.deep.equal(['url']);
    expect(s.detail('a')!.history.map((h) => [h.seq, h.status, h.action, h.fields])).to.deep.equal([
      [0, 'born', undefined, { url: '/a', n: 0 }],
      [1, undefined, undefined, { n: 1 }],
      [2, undefined, 'delete', { url: null }],
    ]);
    expect(s.counters()).to.include({ messages: 3, open: 1, coalesced: 2 });

    s.add(msg('a', 3, { done: true }, { status: 'finished', elapsed: 3 }), META);
    const after = s.takeDirty().changed[0]!;
    expect(after).to.include({ status: 'finished', complete: true });
    expect(after.fields).to.deep.equal({ n: 1, done: true });
    expect(s.counters().open).to.equal(0);
    now += 1999;
    s.tick();
    expect(s.takeDirty().gone).to.deep.equal([]);
    now += 1;
    s.tick();
    expect(s.takeDirty().gone).to.deep.equal(['a']);
    expect(s.detail('a')).to.equal(undefined);
    // A late message of the faded object opens nothing.
    s.add(msg('a', 2, { n: 9 }), META);
    expect(s.snapshot()).to.deep.equal([]);
  });

  it('folds by seq whatever the arrival order, and waits for a missing message before finishing (then incomplete)', () => {
    const s = new LiveState({ now: clock });
    s.add(msg('b', 0, { v: 0 }, { status: 'born' }), META);
    s.add(msg('b', 2, { v: 2 }), META);
    s.add(msg('b', 1, { v: 1 }), META);
    expect(s.detail('b')!.fields).to.deep.equal({ v: 2 });
    s.add(msg('b', 4, {}, { status: 'finished' }), META);
    expect(s.detail('b')!.status).to.equal('open');
    now += 5000;
    s.tick();
    expect(s.detail('b')).to.include({ status: 'finished', complete: false });
  });

  it('bounds the objects and the history, counting what it drops; finished objects go first', () => {
    const s = new LiveState({ now: clock, maxObjects: 3, maxHistory: 2 });
    s.add(msg('t', 0, { x: 1 }, { status: 'transient' }), META);
    for (const id of ['o1', 'o2', 'o3']) s.add(msg(id, 0, { id }, { status: 'born' }), META);
    expect(s.snapshot().map((v) => v.id)).to.deep.equal(['o1', 'o2', 'o3']);
    expect(s.counters().droppedObjects).to.equal(1);
    s.add(msg('o4', 0, {}, { status: 'born' }), META);
    expect(s.snapshot().map((v) => v.id)).to.deep.equal(['o2', 'o3', 'o4']);
    expect(s.counters().droppedObjects).to.equal(2);
    for (let i = 1; i <= 5; i++) s.add(msg('o4', i, { i }), META);
    expect(s.detail('o4')!.history.map((h) => h.seq)).to.deep.equal([4, 5]);
    expect(s.counters()).to.include({ droppedHistory: 4, open: 3 });
    expect(s.takeDirty().gone.sort()).to.deep.equal(['o1', 't']);
  });

  it('counts malformed input and ignores notes (no obj_id)', () => {
    const s = new LiveState({ now: clock });
    s.malformed();
    s.add({ stopping: true } as BusMessage, META);
    expect(s.counters()).to.include({ malformed: 1, messages: 1, open: 0 });
    expect(s.snapshot()).to.deep.equal([]);
  });

  it('reads [HOST:]PORT, 127.0.0.1 by default', () => {
    expect(parseListenAddress('8080')).to.deep.equal({ host: '127.0.0.1', port: 8080 });
    expect(parseListenAddress('0.0.0.0:80')).to.deep.equal({ host: '0.0.0.0', port: 80 });
    expect(parseListenAddress('[::1]:0')).to.deep.equal({ host: '::1', port: 0 });
    expect(parseListenAddress('localhost:9000')).to.deep.equal({ host: 'localhost', port: 9000 });
    for (const bad of ['', 'x', '70000', ':80', 'a b:80', 'h:-1', '8080/x'])
      expect(parseListenAddress(bad)).to.equal(undefined);
  });
});

describe('lcmon --web: the server with objects too large to send', () => {
  it('a snapshot too large for one text goes an object at a time, one too large alone is counted; /api/object says 500; nothing crashes', async () => {
    // V8 refuses a string past 512 MiB (RangeError: Invalid string length): an object whose JSON
    // throws that stands in here for such objects.
    const tooLarge = () => {
      throw new RangeError('Invalid string length');
    };
    class Huge extends LiveState {
      override snapshot() {
        return [...super.snapshot(), { ...super.snapshot()[0]!, id: 'huge', fields: { pad: { toJSON: tooLarge } } }];
      }
      override detail(id: string) {
        return id === 'huge'
          ? { ...super.detail('a')!, id, history: [{ toJSON: tooLarge }] as never }
          : super.detail(id);
      }
    }
    const state = new Huge({ fadeMs: 600_000 });
    state.add(msg('a', 0, { n: 1 }, { status: 'born' }), META);
    state.add(msg('b', 0, { n: 2 }, { status: 'born' }), META);
    const server = new WebServer({ host: '127.0.0.1', port: 0, state, source: 'stdin', fadeMs: 600_000 });
    const url = await server.listen();
    try {
      const events = await new Promise<Array<[string, any]>>((resolve, reject) => {
        const out: Array<[string, any]> = [];
        let text = '';
        const req = http.get(`${url}events`, (res) => {
          res.setEncoding('utf8');
          res.on('data', (s: string) => {
            text += s;
            for (const m of text.matchAll(/event: (\w+)\ndata: (.*)\n\n/g)) out.push([m[1]!, JSON.parse(m[2]!)]);
            text = text.slice(text.lastIndexOf('\n\n') + 2);
            if (out.filter(([e]) => e === 'update').length === 2) {
              req.destroy();
              resolve(out);
            }
          });
        });
        req.on('error', reject);
      });
      const [first, ...rest] = events;
      expect(first![0]).to.equal('hello');
      expect(first![1].objects).to.deep.equal([]);
      expect(rest.flatMap(([, b]) => b.changed.map((o: any) => o.id))).to.deep.equal(['a', 'b']);
      const one = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get(`${url}api/object?id=huge`, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
      expect(one.status).to.equal(500);
      expect(JSON.parse(one.body)).to.deep.equal({ error: 'the object and its history are too large to send' });
    } finally {
      await server.close();
    }
  });
});
