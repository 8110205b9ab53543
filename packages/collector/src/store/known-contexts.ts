/**
 * What the Redis store knows of the contexts it last wrote or read (see
 * RedisContextStoreOptions.knownContexts): per id, the fields' texts (and values once parsed) at
 * one version and incarnation, the least recently used dropped first.
 */

/** A field as the store last wrote or read it: its canonical text ('' : absent), its value once parsed. */
export interface KnownField {
  text: string;
  value?: unknown;
}

/** What the store knows of a context: fields as they are at `version` of incarnation `incarnation`. */
export interface KnownContext {
  fields: Map<string, KnownField>;
  version: number;
  /** The context's #in ('' : it has none). */
  incarnation: string;
  /** `fields` are all the context has. */
  complete: boolean;
  /**
   * The stamp ('<#hs>:') and status ('' : none) a write of this version found, undefined when
   * unknown: with both, merges send values stamped and records made (see write.lua's 'rmerge'). The
   * status goes with the version; the stamp may have moved since (a bus message that changed
   * nothing), and write.lua then stamps the values anew.
   */
  stamp?: string;
  status?: string;
}

/** The contexts known, oldest use first, at most `limit` of them (0: none is kept). */
export class KnownContexts {
  private readonly known = new Map<string, KnownContext>();

  constructor(private readonly limit: number) {}

  /** How many contexts are known. */
  get size(): number {
    return this.known.size;
  }

  /** What is known of `id`, its place in the use order left as it is. */
  peek(id: string): KnownContext | undefined {
    return this.known.get(id);
  }

  /** What is known of `id`, now its newest use. */
  use(id: string): KnownContext | undefined {
    const known = this.known.get(id);
    if (known !== undefined) {
      this.known.delete(id);
      this.known.set(id, known);
    }
    return known;
  }

  /** Forgets `id`: something else may have changed it. */
  forget(id: string): void {
    this.known.delete(id);
  }

  /**
   * Notes fields of `id` as they are at `at` (version and incarnation), just written or read;
   * `complete`: the context has no other. What was known of its other fields stays known when it
   * was known at `at.before` (the version before this store's write) or at `at` itself, and is
   * dropped otherwise (another writer may have changed them).
   */
  remember(
    id: string,
    fields: Iterable<[string, KnownField]>,
    at: { version: number; incarnation: string; before?: number },
    complete = false,
  ): KnownContext {
    let known = this.known.get(id);
    this.known.delete(id);
    const kept =
      known !== undefined &&
      !complete &&
      known.incarnation === at.incarnation &&
      (known.version === at.version || known.version === at.before);
    if (!kept) known = { fields: new Map(), version: at.version, incarnation: at.incarnation, complete };
    for (const [key, f] of fields) known!.fields.set(key, f);
    known!.version = at.version;
    if (this.limit > 0) {
      this.known.set(id, known!);
      if (this.known.size > this.limit) this.known.delete(this.known.keys().next().value!);
    }
    return known!;
  }
}
