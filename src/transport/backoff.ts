/** Exponential backoff shared by MQTT reconnection and repository retries. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. */
  initialDelayMs: number;
  /** Upper bound of any delay, in ms. */
  maxDelayMs: number;
  /** Growth per attempt. */
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 250, maxDelayMs: 30_000, factor: 2 };

/**
 * Delay before retry number `attempt` (0-based). Half of it is random ("equal jitter") so that many nodes cut off
 * by the same broker restart do not all come back in the same millisecond.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = options.initialDelayMs * Math.pow(options.factor, Math.max(0, attempt));
  const capped = Math.min(options.maxDelayMs, exp);
  return Math.round(capped / 2 + Math.random() * (capped / 2));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
