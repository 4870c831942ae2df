// Delivery's public face: the queue runner and what it reports.
export { runQueue, type RunOptions, type RunSummary } from './queue-run.ts';
