// Static file serving for a built page on the signaling port (GET and HEAD only). The request
// path is decoded once and refused when it could leave the root: `..` or `.` segments (also
// percent-encoded), backslashes, NUL, malformed escapes; dot-files are not served. The resolved
// real path (symlinks followed) must stay inside the real root. Files are streamed with
// `stream.pipeline`, which closes the file when the client goes away mid-download.

import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** Handles one request; resolves when the response is finished or handed to a stream. */
export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * The safe relative path of a request URL inside the root, or undefined when the URL must be
 * refused. Exported for tests.
 */
export function safeRelativePath(url: string): string | undefined {
  const query = url.search(/[?#]/);
  const rawPath = query === -1 ? url : url.slice(0, query);
  if (!rawPath.startsWith('/')) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments = decoded.split('/').filter((s) => s.length > 0);
  // `.`/`..` segments could leave the root; other dot-files (.env, .git) are never served.
  if (segments.some((s) => s.startsWith('.'))) return undefined;
  if (decoded.endsWith('/') || segments.length === 0) segments.push('index.html');
  return segments.join('/');
}

/** Serves files under `root`. Requests outside it get 404; methods other than GET/HEAD get 405. */
export function createStaticHandler(root: string): StaticHandler {
  const absoluteRoot = resolve(root);
  let realRoot: Promise<string> | undefined;
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    const relative = safeRelativePath(req.url ?? '/');
    if (relative === undefined) {
      plain(res, 404, 'not found\n');
      return;
    }
    try {
      realRoot ??= realpath(absoluteRoot);
      const rootPath = await realRoot;
      let file = await realpath(join(rootPath, relative));
      let info = await stat(file);
      if (info.isDirectory()) {
        file = await realpath(join(file, 'index.html'));
        info = await stat(file);
      }
      if (!file.startsWith(rootPath + sep) || !info.isFile()) {
        plain(res, 404, 'not found\n');
        return;
      }
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? DEFAULT_CONTENT_TYPE,
        'content-length': info.size,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-cache',
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      // pipeline, not pipe: an aborted download (res closed early) destroys the file stream too,
      // so its file descriptor is closed; a read error destroys the response.
      pipeline(createReadStream(file), res).catch(() => undefined);
    } catch {
      // ENOENT, ENOTDIR, EACCES, a symlink loop: all look the same from outside.
      plain(res, 404, 'not found\n');
    }
  };
}
