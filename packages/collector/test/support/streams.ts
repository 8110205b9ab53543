import type { WireMessage } from '@contexture/context/protocol';

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'b', 'c', 'user', 'nested', 'list', 'empty', '__proto__', 'constructor'];

function randomValue(r: () => number, i: number): unknown {
  switch (Math.floor(r() * 6)) {
    case 0:
      return i;
    case 1:
      return `v${i}`;
    case 2:
      return { x: i, y: { z: r() < 0.5 ? [] : {} }, ['__proto__']: undefined };
    case 3:
      return [i, { k: i }];
    case 4:
      return null;
    default:
      return {};
  }
}

/**
 * The messages of one context as a publisher sends them: born (seq 0), updates and deletes of
 * random fields, finished last.
 */
export function contextStream(id: string, seed: number, length = 30): WireMessage[] {
  const r = rng(seed);
  const out: WireMessage[] = [];
  const t0 = 1_700_000_000 + seed;
  out.push({ obj_id: id, obj: { a: 0, user: 'ann' }, status: 'born', seq: 0, time_in: t0, handler_id: 'h' });
  for (let seq = 1; seq < length - 1; seq++) {
    const key = KEYS[Math.floor(r() * KEYS.length)]!;
    // setOwn would do; JSON.parse is how a real message gets a __proto__ key.
    if (r() < 0.2)
      out.push({
        obj_id: id,
        obj: JSON.parse(`{${JSON.stringify(key)}:null}`),
        action: 'delete',
        seq,
        time_in: t0 + seq,
      });
    else {
      const text = `{${JSON.stringify(key)}:${JSON.stringify(randomValue(r, seq)) ?? 'null'}}`;
      out.push({ obj_id: id, obj: JSON.parse(text), seq, time_in: t0 + seq });
    }
  }
  out.push({ obj_id: id, obj: {}, status: 'finished', seq: length - 1, time_in: t0 + length, elapsed: length });
  return out;
}

/** `messages` shuffled, with about a third of them delivered twice. */
export function shuffledWithDuplicates(messages: WireMessage[], seed: number): WireMessage[] {
  const r = rng(seed * 7919 + 1);
  const out = [...messages];
  for (const m of messages) if (r() < 0.35) out.push(m);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A deep copy that keeps `__proto__` keys as data. */
export function copy<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
