import { createReadStream, ReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

/** Bytes per read from a file on stdin. */
const FILE_READ = 1 << 20;

/**
 * `lcmon -s < file`: Node reads a file on stdin 64 KiB at a time, and a million saved lines then
 * cost several thousand reads and chunks; this reads the same descriptor 1 MiB at a time instead.
 * Anything else (a pipe, a stream already read from) is returned as it is.
 */
export function withLargeReads(stream: Readable): Readable {
  const fd = (stream as ReadStream & { fd?: unknown }).fd;
  if (
    !(stream instanceof ReadStream) ||
    typeof fd !== 'number' ||
    stream.bytesRead !== 0 ||
    stream.readableHighWaterMark >= FILE_READ
  )
    return stream;
  if (stream.readableFlowing !== null || stream.readableLength > 0 || stream.destroyed) return stream;
  // Reads go on from the descriptor's position, as the original's would; it stays open (stdin).
  return createReadStream('', { fd, highWaterMark: FILE_READ, autoClose: false });
}
