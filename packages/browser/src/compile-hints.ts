/**
 * A build plugin (Vite, Rollup, Rolldown) that puts V8's explicit compile hint at the top of the
 * chunks that hold Parley, so a call's first steps do not wait for the browser to compile them.
 *
 * V8 compiles a function lazily, on the main thread, the first time it is called, unless the
 * script it is in starts with the magic comment `//# allFunctionsCalledOnLoad` (Chrome 136 and
 * later; https://v8.dev/blog/explicit-compile-hints): then every function of that script is
 * compiled eagerly, on a background thread, while the script loads. A page loads Parley long
 * before its first call, but runs most of Parley's code (and xstate's and rxjs's) for the first
 * time during that call: in the call set-up benchmark (apps/bench), lazy compilation was about
 * 25 ms of each page's main thread between "call" and "connected", on the critical path of the
 * offer and the answer. Other engines ignore the comment.
 *
 * @module @parley/browser/compile-hints
 */

/** V8's explicit compile hint for a whole script; it must be the script's first line. */
export const ALL_FUNCTIONS_CALLED_ON_LOAD = '//# allFunctionsCalledOnLoad';

/** What the plugin needs of an output chunk (Rollup's and Rolldown's `RenderedChunk`). */
export interface ChunkLike {
  readonly moduleIds: readonly string[];
}

/** A chunk's banner: a string, or a function of the chunk (Rollup's and Rolldown's `AddonFunction`). */
type Addon = string | ((chunk: ChunkLike) => string | Promise<string>);

/** The output options the plugin reads and extends (Rolldown's `postBanner`, after minification). */
interface OutputOptionsLike {
  readonly postBanner?: Addon | undefined;
}

/** What `compileHints` marks. */
export interface CompileHintsOptions {
  /**
   * Which modules make a chunk worth compiling eagerly (default: Parley's packages and the two
   * libraries its machines run on, xstate and rxjs). A chunk gets the hint when one of its
   * modules matches. Mark only code that runs early: eager compilation of code that never runs
   * costs load time and memory.
   */
  readonly includes?: (moduleId: string) => boolean;
}

/**
 * Parley's own packages on disk: the folder that holds this package (`node_modules/@parley/` in an
 * app, `packages/` in Parley's monorepo, whose workspace links bundlers resolve to it).
 */
const PARLEY_PACKAGES = new URL('../../', import.meta.url).pathname;

/** Whether a module is Parley's or one of xstate's or rxjs's (an installed package, by path). */
export function isCallModule(moduleId: string): boolean {
  const path = moduleId.replace(/\\/g, '/');
  return path.startsWith(PARLEY_PACKAGES) || /\/node_modules\/(@parley|xstate|rxjs)\//.test(path);
}

/** A Vite, Rolldown or Rollup plugin (structurally typed: this package does not depend on them). */
export interface CompileHintsPlugin {
  readonly name: string;
  /** Rolldown (Vite 8): the hint goes in `postBanner`, which is added after minification. */
  outputOptions(this: { readonly meta: { readonly rolldownVersion?: string } }, options: OutputOptionsLike): OutputOptionsLike | null;
  /** Rollup: the hint as the chunk's banner (Rollup adds banners after its own plugins' minification). */
  banner(this: { readonly meta: { readonly rolldownVersion?: string } }, chunk: ChunkLike): string;
}

/**
 * The plugin. Bundlers shift the source maps for the added line themselves. A minifier strips
 * comments, so on Rolldown the hint is a `postBanner` (after minification); Rollup has no such
 * option and gets it as a `banner`.
 */
export function compileHints(options: CompileHintsOptions = {}): CompileHintsPlugin {
  const includes = options.includes ?? isCallModule;
  const hintFor = (chunk: ChunkLike): string => (chunk.moduleIds.some(includes) ? ALL_FUNCTIONS_CALLED_ON_LOAD : '');
  return {
    name: 'parley-compile-hints',
    outputOptions(output) {
      if (this.meta.rolldownVersion === undefined) return null;
      const previous = output.postBanner;
      return {
        ...output,
        postBanner: async (chunk) => {
          const rest = typeof previous === 'function' ? await previous(chunk) : (previous ?? '');
          return [hintFor(chunk), rest].filter((part) => part !== '').join('\n');
        },
      };
    },
    banner(chunk) {
      return this.meta.rolldownVersion === undefined ? hintFor(chunk) : '';
    },
  };
}
