import pino, { type DestinationStream, type Logger } from 'pino';

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
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
