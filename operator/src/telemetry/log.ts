// One structured logger (pino, JSON lines). Messages in the Kubernetes style: capitalised, past
// tense, details as key/values, e.g. log.info({ node }, 'Registered GPU node').
import { pino, type Logger } from 'pino';

export type { Logger };

export function makeLogger(component: string, level = process.env.GPUFED_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { component } });
}
