// Node built-ins, imported only when running under Node. The name arrives as an
// argument so that bundlers (esbuild, Vite, webpack) leave the import alone rather
// than trying to resolve 'fs' for a browser build.
export const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);
export const nodeImport = (name) => import(/* @vite-ignore */ /* webpackIgnore: true */ name);
