/** The worker process's one Prometheus meter: created on first use and installed as the process's {@link meter}. */
import { useMeter } from './meter.ts';
import { createPrometheusMeter, type PrometheusMeter } from './prometheus.ts';

let installed: PrometheusMeter | undefined;

export function processMeter(): PrometheusMeter {
  if (!installed) {
    installed = createPrometheusMeter();
    useMeter(installed);
  }
  return installed;
}
