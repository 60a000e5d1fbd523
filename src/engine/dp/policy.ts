/**
 * Which differential-privacy requests (`training_args.dp_args`) this node can honour. A request this node cannot
 * honour is refused with the reason, never trained with fewer protections than it asked for.
 */
import type { DpArgs } from '../../protocol/training-args';

/** Why `dp_args` cannot be honoured, or null when it can (or when no DP was asked for). */
export function dpRefusal(dp: DpArgs | null): string | null {
  if (dp === null) return null;
  return `differential privacy (dp_args type "${dp.type}") is not implemented on this TS node: ` +
    'refusing to train rather than return non-private weights';
}
