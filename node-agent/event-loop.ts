/**
 * Training runs on the node's main thread, and a batch is produced and consumed without ever waiting on I/O: left
 * alone, a long round starves the event loop (no pings answered, no deadline timer firing, the broker drops the
 * node). Handing the loop a turn between batches every few milliseconds keeps the node responsive at a cost of
 * well under 1% of training time.
 */
import type { BatchSource } from '../src/engine/train';

/** Event-loop turn interval during training. */
const TURN_EVERY_MS = 20;

export function yieldingBatches(source: BatchSource, everyMs = TURN_EVERY_MS): BatchSource {
  let last = Date.now();
  return {
    size: source.size,
    batch: async (positions: number[]) => {
      if (Date.now() - last >= everyMs) {
        await new Promise((resolve) => setImmediate(resolve));
        last = Date.now();
      }
      return source.batch(positions);
    },
  };
}
