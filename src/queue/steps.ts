// Named points on the way of a message through the queue, for the crash
// tests: a test process sets `steps.at` (to SIGKILL itself at one of them)
// and then checks that every acknowledged message is delivered exactly once.
// Nothing else sets it; unset, a step costs one comparison.
//
//   enqueue     the entry's file is written and fsync'd, not yet renamed
//   commit      renamed and the directory fsync'd: the commit point, before
//               the caller is told (so before any 250 or exit 0)
//   delivery    a batch's mailbox copies written, not yet crossed off
//   cross-off   deliveries crossed off in the journal, entry not finished
//   finish      a finished entry's file removed, the batch not yet over

export type Step = 'enqueue' | 'commit' | 'delivery' | 'cross-off' | 'finish';

export const steps: { at?: (step: Step) => void } = {};

export function step(s: Step): void {
  steps.at?.(s);
}
