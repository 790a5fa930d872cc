import { isIP } from 'node:net';

/**
 * Loopback by the parsed host, never by a string prefix: `http://localhost:80@idp.example/`
 * is a request to idp.example. Names other than `localhost` are not resolved (DNS could say
 * anything).
 */
export function isLoopbackUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

/** For what must not travel in clear text (keys, credentials): https, or http to this host. */
export function httpsOrLoopback(text: string): boolean {
  return text.startsWith('https://') || (text.startsWith('http://') && isLoopbackUrl(text));
}

export const HTTPS_OR_LOOPBACK = 'must be https (plain http only to a loopback host such as 127.0.0.1 or localhost)';
