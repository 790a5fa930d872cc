import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { Router } from 'express';
import { sendProblem } from '../ingress/problems.js';

/** Built by `npm run build` (scripts/build-console.mjs); the same place from src/ and dist/. */
export const CONSOLE_ASSETS = join(import.meta.dirname, '../../dist/console/page');

/**
 * `/console`: static files only. The page holds no secret and no data: it asks the admin API
 * with the operator's token, so the same auth guards both.
 */
export function consoleRouter(assets = CONSOLE_ASSETS): Router {
  const router = Router();
  if (!existsSync(join(assets, 'index.html'))) {
    router.use((_req, res) => sendProblem(res, 'not_found', 'the console is not built into this install: run npm run build'));
    return router;
  }
  router.use((_req, res, next) => {
    // Everything the page needs comes from this origin; nothing inline, nothing framed.
    res.setHeader('content-security-policy', "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-content-type-options', 'nosniff');
    next();
  });
  router.use(express.static(assets, { index: 'index.html', cacheControl: true, maxAge: 0, fallthrough: true }));
  return router;
}
