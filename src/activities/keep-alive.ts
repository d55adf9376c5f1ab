/**
 * Liveness for every activity attempt. Temporal learns that a worker died only when one of the attempt's timeouts
 * passes: with start-to-close alone, a worker killed in the middle of a two-second GitHub call holds its deploy for
 * the whole start-to-close timeout (minutes). With a short `heartbeatTimeout` on every activity and this interceptor
 * heartbeating while the attempt runs, a dead worker's attempt is retried by the next worker within seconds, while a
 * slow but live call keeps its full start-to-close budget.
 *
 * Activities that heartbeat details of their own (poll memory, rollout progress) keep them: the keep-alive repeats
 * the latest details the activity sent (or those of the previous attempt), never an empty heartbeat over them.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** How often to heartbeat while an attempt runs; the SDK throttles what reaches the server anyway. */
const EVERY_MS = 2000;

export const keepAlive: ActivityInterceptorsFactory = (ctx: Context) => ({
  inbound: {
    async execute(input, next) {
      const timeoutMs = ctx.info.heartbeatTimeoutMs;
      if (!timeoutMs) return next(input);
      const send = ctx.heartbeat;
      let latest: unknown = ctx.info.heartbeatDetails;
      // `heartbeat` is the context's own function property: remember what the activity sends through it.
      Object.defineProperty(ctx, 'heartbeat', {
        configurable: true,
        value: (details?: unknown) => {
          latest = details;
          send(details);
        },
      });
      send(latest);
      const timer = setInterval(() => send(latest), Math.min(EVERY_MS, timeoutMs / 3));
      try {
        return await next(input);
      } finally {
        clearInterval(timer);
      }
    },
  },
});
