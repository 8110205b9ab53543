import type { MonitorMessage, VerboseObject } from './shapes.js';
import { MonitorStream } from './monitor-stream.js';
import { resolveOptions, type MessagesOptions, type ObjectsOptions } from './options.js';

/**
 * The messages on the bus (or in a stream of saved lines), each as `{rkey, headers, object}`.
 * Validates the options at once (throws `LC_MONITOR_INVALID_OPTION`); connects when iterated or opened.
 *
 * @example
 * await using stream = messages({ bindingKeys: ['web.#'] });
 * for await (const { rkey, object } of stream) console.log(rkey, object.obj);
 */
export function messages(options?: MessagesOptions): MonitorStream<MonitorMessage> {
  return new MonitorStream<MonitorMessage>(resolveOptions(options, 'messages'), 'messages');
}

/**
 * Whole objects collated from the stream: the bare object, or with `verbose` the object with its
 * routing key, headers, times and id. Out-of-order and duplicate messages give the same objects.
 *
 * @example
 * for await (const o of objects({ verbose: true })) console.log(o.id, o.elapsed, o.object);
 */
export function objects(options: ObjectsOptions & { verbose: true }): MonitorStream<VerboseObject>;
export function objects(options?: ObjectsOptions): MonitorStream<Record<string, unknown>>;
export function objects(options?: ObjectsOptions): MonitorStream<VerboseObject | Record<string, unknown>> {
  return new MonitorStream<VerboseObject | Record<string, unknown>>(resolveOptions(options), 'objects');
}
