import { pino } from 'pino';
import type { Logger } from '@contexture/context';
import { textLogger } from '@contexture/context/internal';

/** What `--log-format` takes. */
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The logger of the `contexture-collector` program, on `stderr`:
 *
 * - `text`: the line `contexture-collector: <message>`, the fields left out;
 * - `json`: one JSON object per line, made by pino (so pino-pretty, log shippers and `jq` read it as
 *   they read any pino output): `level` as a word (`info`, `warn`, `error`), `time` as an ISO
 *   string, `name` `contexture-collector`, `pid`, `hostname`, `msg`, then the record's fields.
 *   pino writes each record with one synchronous `write()` on the stream given, so nothing is
 *   lost when the program exits right after.
 */
export function programLogger(format: LogFormat, stderr: NodeJS.WritableStream): Logger {
  if (format === 'text') return textLogger(() => 'contexture-collector: ', stderr);
  return pino(
    {
      name: 'contexture-collector',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // The program passes `err` as plain fields already ({ name, message, code }, passwords
      // masked); pino's own serializer would reshape them as an Error (`type: "Object"`, `stack: ""`).
      serializers: { err: (e: unknown) => (e instanceof Error ? pino.stdSerializers.err(e) : e) },
    },
    { write: (line: string) => void stderr.write(line) },
  );
}
