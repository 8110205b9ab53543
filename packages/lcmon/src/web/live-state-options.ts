/** Options of {@link LiveState}. */
export interface LiveStateOptions {
  /**
   * The most objects kept (open, and finished ones still fading); past it the oldest go, finished
   * ones first, and are counted in `droppedObjects`.
   * @default 10000
   */
  maxObjects?: number;
  /**
   * The most messages of change history kept per object; past it the oldest go, counted in
   * `droppedHistory`.
   * @default 100
   */
  maxHistory?: number;
  /**
   * How long (ms) a finished object stays after it finished, for the page to fade it out.
   * @default 10000
   */
  fadeMs?: number;
  /**
   * Clock in ms.
   * @default Date.now
   */
  now?: () => number;
}

export const LIVE_STATE_DEFAULTS: Readonly<Required<LiveStateOptions>> = Object.freeze({
  maxObjects: 10_000,
  maxHistory: 100,
  fadeMs: 10_000,
  now: Date.now,
});
