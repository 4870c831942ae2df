// Sieve (RFC 5228) mail filtering: the language (parse.ts, check.ts), its
// interpreter (interpret.ts), local delivery through a user's script with the
// user's identity (deliver.ts), and the script store ManageSieve serves
// (store.ts). Import only this file.
export { SieveError, parseScript } from './parse.ts';
export { compileScript, EXTENSIONS } from './check.ts';
export { runScript, type Outcome, type SieveMessage } from './interpret.ts';
export { deliverFiltered, scriptPath, type Verdict } from './deliver.ts';
export { applyVerdict, type VerdictContext } from './verdict.ts';
export { ScriptStore, StoreError, MAX_SCRIPT_BYTES } from './store.ts';
