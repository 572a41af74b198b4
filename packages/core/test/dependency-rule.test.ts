import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// docs/architecture.md, "Dependency rule": core imports only xstate and rxjs, touches no DOM or Node
// globals, and so runs unchanged in a browser, in Node and in a worker. The testing kit may
// also import fast-check (an optional peer dependency).

const sourceRoot = fileURLToPath(new URL('../src', import.meta.url));

function sourceFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((entry) => {
    const path = join(directory, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/g;
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g;
const PLATFORM_GLOBALS = /\b(?:window|document|navigator|process|Buffer|RTCPeerConnection|WebSocket)\s*[.(]/;

describe('core stays platform-free', () => {
  const files = sourceFiles(sourceRoot);

  it('finds the sources', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files.map((file) => [relative(sourceRoot, file), file]))('%s imports only xstate, rxjs and core', (name, file) => {
    const text = readFileSync(file, 'utf8');
    const allowed = name.startsWith('testing/') ? ['xstate', 'rxjs', 'fast-check'] : ['xstate', 'rxjs'];
    const specifiers = [...text.matchAll(IMPORT)].map((match) => match[1]!);
    const dynamic = [...text.matchAll(DYNAMIC_IMPORT)].map((match) => match[1] ?? match[2]!);
    for (const specifier of [...specifiers, ...dynamic]) {
      if (specifier.startsWith('.')) continue;
      expect(allowed, `${name} imports ${specifier}`).toContain(specifier);
    }
    const code = text.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    expect(code, `${name} uses a platform global`).not.toMatch(PLATFORM_GLOBALS);
  });
});
