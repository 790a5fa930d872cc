import pino, { type DestinationStream, type Logger } from 'pino';
import { redactDeep, redactUrls } from './redact.js';

export type { Logger };

// Request headers are never logged wholesale (they carry signatures and tokens); the
// redaction list is the second line of defence for anything logged by hand.
const REDACT = [
  'req.headers.authorization',
  'req.headers["webhook-signature"]',
  'headers.authorization',
  'headers["webhook-signature"]',
  '*.secret',
  '*.secrets',
  '*.password',
  '*.token',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'planasonix-bridge' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      // Key names cannot tell a URL with a password in it: every string, message and error
      // text has URL credentials replaced (log/redact.ts).
      formatters: { level: (label) => ({ level: label }), log: (object) => redactDeep(object) },
      serializers: { err: (err: Error) => redactDeep(pino.stdSerializers.err(err)) },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactUrls(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}
