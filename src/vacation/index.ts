// vacation(1), the RFC 3834 personal responder run from ~/.forward: its
// command line, its decision, its database and its reply. The CLI
// (src/cli/vacation.ts) parses, reads standard input and calls these.
export { parseInterval, USAGE, type VacationArgs } from './args.ts';
export { respond, initDb, addExclusions, listDb, vacationFiles, type VacationFiles, type Responder } from './respond.ts';
export { ownAddresses, judge, type Verdict } from './policy.ts';
export { sendReply } from './send.ts';
// For Sieve's vacation action (src/sieve): the same reply rules and once-per-interval memory.
export { buildReply } from './reply.ts';
export { updateDb, repliedRecently, prune } from './db.ts';
