// Structured logging: one JSON object per event. Never pass SDP, ICE candidates, join tokens,
// resume tokens or TURN credentials in a log event: the first two carry IP addresses, the rest
// are secrets. Signal payloads are opaque to the server and are never logged.

/** How much a log event matters. */
export type LogLevel = 'info' | 'warn' | 'error';

/**
 * One structured log event of the server; never carries SDP, candidates, tokens or credentials.
 */
export interface LogEvent {
  readonly level: LogLevel;
  /** What happened, in kebab-case: `listening`, `connect`, `join`, `disconnect`, ... */
  readonly event: string;
  readonly [field: string]: unknown;
}

/** Receives every log event; must not throw (a throwing logger is caught and ignored). */
export type Logger = (event: LogEvent) => void;

/** The default logger: one JSON line per event on stdout, with an ISO timestamp. */
export const jsonLineLogger: Logger = (event) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
};

/** A logger that drops everything. */
export const silentLogger: Logger = () => undefined;

/** Wraps a logger so that a failure inside it never reaches the server. */
export function safeLogger(logger: Logger): Logger {
  return (event) => {
    try {
      logger(event);
    } catch {
      // Logging must never take the server down.
    }
  };
}

/** The message of an unknown thrown value, for logs. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
