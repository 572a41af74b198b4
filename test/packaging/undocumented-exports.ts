import ts from 'typescript';
import { join } from 'node:path';
import { WORKSPACE } from './install-packed.js';

// Every declaration a public entry point exports has a doc comment (`/** ... */`): the API
// reference (`npm run docs`) is built from them. Found with the TypeScript compiler on the
// sources, following re-exports to the declaration itself.

/** The public entry points, by package specifier, and their source files. */
export const ENTRY_POINTS: Readonly<Record<string, string>> = {
  '@parley/core': 'packages/core/src/index.ts',
  '@parley/core/testing': 'packages/core/src/testing/index.ts',
  '@parley/browser': 'packages/browser/src/index.ts',
  '@parley/browser/compile-hints': 'packages/browser/src/compile-hints.ts',
  '@parley/signaling-ws/server': 'packages/signaling-ws/src/server/index.ts',
  '@parley/signaling-ws/client': 'packages/signaling-ws/src/client/index.ts',
  '@parley/signaling-ws/protocol': 'packages/signaling-ws/src/protocol.ts',
};

/** One exported name without a doc comment, and where it is declared. */
export interface UndocumentedExport {
  readonly entryPoint: string;
  readonly name: string;
  readonly declaredAt: string;
}

/** Every export of every entry point whose declaration has no doc comment. */
export function undocumentedExports(): UndocumentedExport[] {
  const files = Object.values(ENTRY_POINTS).map((file) => join(WORKSPACE, file));
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const found: UndocumentedExport[] = [];
  for (const [entryPoint, file] of Object.entries(ENTRY_POINTS)) {
    const source = program.getSourceFile(join(WORKSPACE, file));
    const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
    if (moduleSymbol === undefined) throw new Error(`${entryPoint}: ${file} did not load`);
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declarations = symbol.declarations ?? [];
      const documented = declarations.some((declaration) => hasDocComment(declaration));
      if (documented) continue;
      const first = declarations[0];
      const where = first === undefined ? '?' : `${first.getSourceFile().fileName.slice(WORKSPACE.length)}:${first.getSourceFile().getLineAndCharacterOfPosition(first.getStart()).line + 1}`;
      found.push({ entryPoint, name: exported.name, declaredAt: where });
    }
  }
  return found;
}

/** A `/** ... *\/` comment with text or tags on the declaration (or its variable statement). */
function hasDocComment(declaration: ts.Declaration): boolean {
  const node = ts.isVariableDeclaration(declaration) ? declaration.parent.parent : declaration;
  return ts.getJSDocCommentsAndTags(node).some((doc) => ts.isJSDoc(doc) && (doc.comment !== undefined || (doc.tags?.length ?? 0) > 0));
}
