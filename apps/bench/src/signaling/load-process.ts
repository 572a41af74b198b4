// A load generator process: `node load-process.js INDEX`. Holds groups of pairs (one group per
// subject) and runs them on request; see load.ts.

import { serveRequests } from './children.js';
import type { Request } from './children.js';
import { LoadGroup } from './load.js';
import type { GroupOptions, RunResult } from './load.js';
import type { Subject } from './protocols.js';

const index = Number(process.argv[2] ?? '0');
const groups = new Map<string, LoadGroup>();

function group(request: Request): LoadGroup {
  const name = String(request['group']);
  const found = groups.get(name);
  if (found === undefined) throw new Error(`no group ${name} in load process ${index}`);
  return found;
}

serveRequests(
  {
    async connect(request): Promise<number> {
      const name = String(request['group']);
      let found = groups.get(name);
      if (found === undefined) {
        const options: GroupOptions = {
          subject: request['subject'] as Subject,
          urls: (request['urls'] as unknown[]).map(String),
          tag: `l${index}${name}`,
          ...(Array.isArray(request['localAddresses']) ? { localAddresses: request['localAddresses'] as string[] } : {}),
        };
        found = new LoadGroup(options);
        groups.set(name, found);
      }
      await found.connect(Number(request['pairs']));
      return found.size;
    },
    runClosed: (request): Promise<RunResult> =>
      group(request).runClosed({
        window: Number(request['window']),
        warmupMs: Number(request['warmupMs']),
        measureMs: Number(request['measureMs']),
      }),
    runOpen: (request): Promise<RunResult> =>
      group(request).runOpen({
        rate: Number(request['rate']),
        warmupMs: Number(request['warmupMs']),
        measureMs: Number(request['measureMs']),
      }),
    async close(request): Promise<boolean> {
      const found = groups.get(String(request['group']));
      groups.delete(String(request['group']));
      await found?.close();
      return true;
    },
  },
  { index },
);
