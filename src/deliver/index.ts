// Delivery's public face: the queue runner and what it reports; remote
// delivery, and the resolver the SMTP listener uses for reverse names.
export { runQueue, type RunOptions, type RunSummary } from './queue-run.ts';
export { inProcessAgent, ipcAgent, type LocalAgent, type AgentOp, type AgentReply, type AgentTarget, type MasterToRunner, type RunnerToMaster } from './local-agent.ts';
// Types only: remote.ts (TLS, sockets) is loaded by the runner when a batch has remote mail.
export type { RemoteJob, RemoteOutcome, RemoteRecipient } from './remote.ts';
export { MailResolver, makeResolver, type ReverseName } from './dns.ts';
